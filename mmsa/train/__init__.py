"""Training: the streaming batch source, the pretraining loop and finetuning."""
