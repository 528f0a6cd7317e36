#!/usr/bin/env bash
# The GPU check for the GPU machine some sessions are lent: a container with one NVIDIA GPU,
# the driver mounted read-only at /usr/local/nvidia, torch at /opt/torch/.venv, no network.
#
#   bench/gpu-device.sh [--labup PATH] [--torch-python PATH] [--uv PATH] [--fake-root DIR]
#
# It runs, in a fresh project in a temporary folder: `labup gpu --json`, `labup doctor --json`,
# and a CUDA computation through `labup run` in the project's venv, which sees the torch of
# --torch-python's interpreter through a .pth file (nothing is downloaded); then prints a short
# report: driver, layout found, compute capability, chosen torch index, link folder, the
# doctor's verdicts, torch's device name.
#
# Carry a labup built here (`cargo build --release`, x86-64): target/release/labup is the
# default. --fake-root DIR is the dry run for machines without a GPU: labup reads the host under
# DIR (LABUP_FS_ROOT), the interpreter is the local python3, and the CUDA computation is replaced
# by checking the library path `labup run` gives the child (tests/it/gpu.rs runs it).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
labup="$here/target/release/labup"
torch_python=/opt/torch/.venv/bin/python
uv=""
fake_root=""
while [ $# -gt 0 ]; do
  case "$1" in
    --labup) labup=$2; shift 2 ;;
    --torch-python) torch_python=$2; shift 2 ;;
    --uv) uv=$2; shift 2 ;;
    --fake-root) fake_root=$2; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "gpu-device.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -x "$labup" ] || { echo "gpu-device.sh: no labup at $labup (cargo build --release, or --labup)" >&2; exit 2; }
labup=$(cd "$(dirname "$labup")" && pwd)/$(basename "$labup")
if [ -n "$fake_root" ]; then
  export LABUP_FS_ROOT=$fake_root
  [ -x "$torch_python" ] || torch_python=$(command -v python3)
fi
[ -x "$torch_python" ] || { echo "gpu-device.sh: no interpreter at $torch_python" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/labup-gpu-device.XXXXXX")
trap 'rm -rf "$work"' EXIT
project=$work/project
mkdir -p "$project"
cat > "$project/labup.toml" <<'EOF'
[project]
name = "gpu-device"

[gpu]
cuda = "auto"

[services.jupyter]
kind = "jupyter"
enabled = false
EOF

export LABUP_PYTHON=$torch_python LABUP_NO_BROWSER=1 LABUP_NO_PROGRESS=1 NO_COLOR=1
export UV_OFFLINE=1 PIP_NO_INDEX=1 UV_CACHE_DIR=$work/uv-cache
[ -n "$uv" ] && export LABUP_UV=$uv
cd "$project"
step() { printf '== %s\n' "$1" >&2; }

step "labup sync (no packages: offline)"
"$labup" sync >"$work/sync.log" 2>&1 || { cat "$work/sync.log" >&2; exit 1; }
# The venv sees the interpreter's own packages (torch) through a .pth file.
site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
"$torch_python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' > "$site/labup-gpu-device-base.pth"

step "labup gpu --json"
"$labup" gpu --json >"$work/gpu.json" 2>"$work/gpu.err" || { cat "$work/gpu.err" >&2; exit 1; }
step "labup doctor --json"
"$labup" doctor --json >"$work/doctor.json" 2>"$work/doctor.err" || true

if [ -n "$fake_root" ]; then
  step "labup run (dry run: the child's library path)"
  "$labup" run --no-sync -- python -c 'import json, os; print(json.dumps({"dry_run": True, "ld_library_path": os.environ.get("LD_LIBRARY_PATH")}))' >"$work/run.json"
else
  step "labup run: a CUDA computation with torch"
  "$labup" run --no-sync -- python - >"$work/run.json" <<'EOF'
import json, time, torch
t = time.time()
ok = torch.cuda.is_available()
out = {"torch": torch.__version__, "cuda_available": ok, "torch_cuda": torch.version.cuda}
if ok:
    x = torch.randn(4096, 4096, device="cuda")
    y = x @ x
    torch.cuda.synchronize()
    out.update(device=torch.cuda.get_device_name(0), capability=".".join(map(str, torch.cuda.get_device_capability(0))),
               matmul_sum=float(y.sum().item()), seconds=round(time.time() - t, 3))
print(json.dumps(out))
EOF
fi

"$torch_python" - "$work" <<'EOF'
import json, sys
work = sys.argv[1]
gpu = json.load(open(f"{work}/gpu.json"))
try:
    doctor = json.load(open(f"{work}/doctor.json"))
except ValueError:
    doctor = {"checks": []}
run = json.load(open(f"{work}/run.json"))
devices = gpu.get("devices") or []
caps = ", ".join(f"{d['name']} {d['compute_capability']}" for d in devices) or "none (NVML not read)"
print("labup on the GPU machine")
print(f"  driver            {gpu.get('driver_version')} (from {gpu.get('source')}), CUDA <= {gpu.get('cuda_max')}")
print(f"  layout            {gpu.get('layout')} ({gpu.get('driver_dir')})")
print(f"  nvidia-smi        {gpu.get('nvidia_smi')}")
print(f"  compute           {caps}")
print(f"  torch index       {gpu.get('torch_backend')}: {gpu.get('reason')}")
print(f"  link folder       {gpu.get('link_dir')}")
print("  doctor            " + ", ".join(f"{c['id']} {c['status']}" for c in doctor.get("checks", [])))
if run.get("dry_run"):
    print(f"  child LD path     {run.get('ld_library_path')}")
else:
    print(f"  torch             {run.get('torch')} (CUDA {run.get('torch_cuda')}), available: {run.get('cuda_available')}")
    print(f"  torch device      {run.get('device')} (capability {run.get('capability')})")
    print(f"  4096² matmul      sum {run.get('matmul_sum')} in {run.get('seconds')} s")
EOF
