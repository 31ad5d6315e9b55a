"""The column names of a fetched table (``raw.parquet``), which later stages read by name."""

ROW = "row"
SOURCE_ROW = "source_row"  # a sampled row's number in the unsampled source table
SMILES = "smiles"
FETCH_ERROR = "fetch_error"  # why a row could not be read (null when it could); it is then rejected
SOURCE_DATASET = "source_dataset"  # a mixture's row: the dataset it was sampled from (mmsa.data.corpus)
RESERVED = (ROW, SOURCE_ROW, SOURCE_DATASET, SMILES, FETCH_ERROR)  # columns that are not tasks
SMILES_OPTION = "--smiles-column"  # how mmsa embed and predict let the user name the SMILES column
