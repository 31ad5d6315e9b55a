"""A pin the CPU cannot run is one line before torch starts: in the library, the command and Snakemake.

The CPU is stood in for by a cpuinfo file: an AMD EPYC's flags without AVX-512 (the CPU on which
the avx512 pin once died with ``Illegal instruction``), an ARM board's (no ``flags`` line).
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mmsa.runtime import kernels
from mmsa.runtime.kernels import CpuKernelsError, check_cpu_flags, cpu_flags

REPO = Path(__file__).resolve().parents[2]
AMD_FLAGS = (
    "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht "
    "syscall nx mmxext fxsr_opt pdpe1gb rdtscp lm constant_tsc rep_good nopl nonstop_tsc cpuid "
    "extd_apicid tsc_known_freq pni pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt aes "
    "xsave avx f16c rdrand hypervisor lahf_lm cmp_legacy cr8_legacy abm sse4a misalignsse 3dnowprefetch "
    "osvw topoext ssbd ibrs ibpb stibp vmmcall fsgsbase bmi1 avx2 smep bmi2 erms invpcid rdseed adx "
    "smap clflushopt clwb sha_ni xsaveopt xsavec xgetbv1 xsaves clzero xsaveerptr rdpru arat npt nrip_save "
    "umip vaes vpclmulqdq rdpid fsrm"
)
AMD_MODEL = "AMD EPYC 7B13"


def cpuinfo(tmp_path: Path, flags: str = AMD_FLAGS, model: str = AMD_MODEL, cpus: int = 2) -> Path:
    block = f"processor\t: {{n}}\nvendor_id\t: AuthenticAMD\nmodel name\t: {model}\nflags\t\t: {flags}\n\n"
    path = tmp_path / "cpuinfo"
    path.write_text("".join(block.format(n=n) for n in range(cpus)))
    return path


def test_flags_and_model_are_read_from_cpuinfo(tmp_path):
    model, flags = cpu_flags(cpuinfo(tmp_path))
    assert model == AMD_MODEL
    assert {"avx2", "fma", "sse4_1"} <= flags and "avx512f" not in flags


def test_a_cpu_without_a_flags_line_or_cpuinfo_is_not_judged(tmp_path):
    arm = tmp_path / "arm"
    arm.write_text(
        "processor\t: 0\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32\nCPU part\t: 0xd0c\n"
    )
    assert cpu_flags(arm) is None and cpu_flags(tmp_path / "missing") is None
    check_cpu_flags("avx512", arm)  # torch's own check (check_cpu_kernels) remains after import


def test_a_pin_the_cpu_lacks_is_one_line_naming_what_is_missing_and_what_to_choose(tmp_path):
    info = cpuinfo(tmp_path)
    for runnable in ("default", "avx2", "native"):
        check_cpu_flags(runnable, info)
    with pytest.raises(CpuKernelsError) as raised:
        check_cpu_flags("avx512", info)
    message = str(raised.value)
    assert message == (
        "cpu_kernels 'avx512' needs the avx512f, avx512bw, avx512vl, avx512dq instructions, which this "
        f"CPU ({AMD_MODEL}) does not have: set cpu_kernels to 'default' (runs on every x86-64 CPU) or "
        "'native'; results then differ from runs under 'avx512'"
    )
    old = cpuinfo(tmp_path, flags="fpu sse sse2 ssse3 sse4_1 sse4_2 avx", model="Intel Xeon E5-2670")
    with pytest.raises(
        CpuKernelsError, match=r"needs the avx2, fma instructions, which this CPU \(Intel Xeon"
    ):
        check_cpu_flags("avx2", old)


def test_pinning_checks_the_cpu_before_setting_anything(tmp_path, monkeypatch):
    monkeypatch.setattr(kernels, "CPUINFO", cpuinfo(tmp_path))
    monkeypatch.delenv(kernels.SETTING_VARIABLE, raising=False)
    with pytest.raises(CpuKernelsError):
        kernels.pin_cpu_kernels("avx512")
    assert kernels.SETTING_VARIABLE not in os.environ


def test_the_command_says_it_in_one_line_and_exits_1(tmp_path, monkeypatch, capsys):
    from mmsa.cli import main

    monkeypatch.setattr(kernels, "CPUINFO", cpuinfo(tmp_path))
    config = tmp_path / "config.yaml"
    config.write_text("cpu_kernels: avx512\n")
    (tmp_path / "in.csv").write_text("smiles\nCCO\n")
    args = ["--model", str(tmp_path / "model.pt"), "--out", str(tmp_path / "out.parquet")]
    assert main(["embed", str(tmp_path / "in.csv"), *args, "--config", str(config)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mmsa embed: cpu_kernels 'avx512' needs the avx512f")
    assert not (tmp_path / "out.parquet").exists()


@pytest.mark.slow
def test_snakemake_stops_before_any_job_with_the_line(tmp_path):
    """The Snakefile pins the kernels when it is read, so every run (and, on a cluster, every
    job's own Snakemake on its node) checks the CPU first."""
    code = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        import mmsa.runtime.kernels as kernels
        kernels.CPUINFO = Path({str(cpuinfo(tmp_path))!r})
        from snakemake.cli import main
        sys.argv = ["snakemake", "-n", "--cores", "1", "--configfile", "config/test.yaml",
                    "--config", "cpu_kernels=avx512", "--directory", {str(tmp_path / "run")!r}]
        main()
        """
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    said = done.stdout + done.stderr  # Snakemake prints a WorkflowError on stdout
    assert done.returncode == 1, said
    assert "cpu_kernels 'avx512' needs the avx512f, avx512bw, avx512vl, avx512dq instructions" in said
    assert f"({AMD_MODEL})" in said and "Traceback" not in said
    assert not (tmp_path / "run" / "results").exists()
