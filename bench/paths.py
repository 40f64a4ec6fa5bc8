from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
VENV_BIN = PROJECT_ROOT / ".venv" / "bin"
VENV_PYTHON = VENV_BIN / "python"
GUNICORN = VENV_BIN / "gunicorn"
GUNICORN_CONFIG = PROJECT_ROOT / "gunicorn.conf.py"
WRK_SCRIPT = BENCH_DIR / "patch.lua"
