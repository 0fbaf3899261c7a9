#!/usr/bin/env bash
# Runs the scoring benchmark (docs/benchmarks.md, "Scoring"): ROUNDS rounds of the .NET engines and PyTorch eager,
# alternating, on this machine with THREADS threads each; prints every row and then the best round per engine.
# Best-of-rounds because the build hosts are shared: other jobs inflate single measurements.
#   benchmarks/run_scoring.sh            # ROUNDS=3 THREADS=2 MODELS=X002,Y016 BATCHES=1,32 SIZE=224
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}; THREADS=${THREADS:-2}; MODELS=${MODELS:-X002,Y016}; BATCHES=${BATCHES:-1,32}; SIZE=${SIZE:-224}
MIN_SECONDS=${MIN_SECONDS:-4}; MIN_ITERS=${MIN_ITERS:-3}
dotnet build benchmarks/RegNetML.Benchmarks -c Release -v q -nologo >/dev/null
out=$(mktemp)
echo "# $(lscpu | grep 'Model name' | sed 's/  */ /g'), $(nproc) CPUs, load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$ROUNDS"); do
  dotnet run -c Release --no-build --project benchmarks/RegNetML.Benchmarks -- --threads "$THREADS" --models "$MODELS" \
    --batches "$BATCHES" --size "$SIZE" --min-seconds "$MIN_SECONDS" --min-iters "$MIN_ITERS" 2>/dev/null | grep -v '^#' | grep -v '^engine' | tee -a "$out"
  /usr/bin/python3 benchmarks/pytorch_scoring.py --threads "$THREADS" --models "$MODELS" --batches "$BATCHES" --size "$SIZE" \
    --min-seconds "$MIN_SECONDS" --min-iters "$MIN_ITERS" | grep -v '^#' | grep -v '^engine' | tee -a "$out"
done
echo "# load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# best of $ROUNDS rounds (images/s):"
sort -t, -k1,1 -k2,2 -k3,3n -k4,4gr "$out" | awk -F, '!seen[$1","$2","$3]++ { print }'
rm -f "$out"
