#!/usr/bin/env bash
# Throughput of samples/RegNetML.DataParallel (RegNetX-002 at 32×32, 1,000 images, 2 epochs): 2 ranks × 1 thread
# (32 images per rank) against 1 rank × libtorch's default threads and 1 rank × 1 thread (64 images per step), then the
# gradient averaging alone (tests/RegNetML.DataParallelHost bench). docs/data_parallel.md has the results.
# Needs: dotnet build -c Release samples/RegNetML.DataParallel; dotnet build tests/RegNetML.DataParallelHost; mpirun.
set -uo pipefail
cd "$(dirname "$0")/.."
D=samples/RegNetML.DataParallel/bin/Release/net10.0/RegNetML.DataParallel.dll
H=tests/RegNetML.DataParallelHost/bin/Debug/net10.0/RegNetML.DataParallelHost.dll
root=$([ "$(id -u)" = 0 ] && echo --allow-run-as-root)
ws=$(mktemp -d)
export TERM=dumb
for round in 1 2; do
  echo "== round $round $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
  rm -rf "$ws"/*; echo "-- 2 ranks x 1 thread"; mpirun $root -np 2 dotnet $D 2 "$ws" 32 2>&1 | grep -E "TrainEpoch|allreduce|trained in"
  rm -rf "$ws"/*; echo "-- 1 rank x default threads"; dotnet $D 2 "$ws" 64 2>&1 | grep -E "TrainEpoch|trained in"
  rm -rf "$ws"/*; echo "-- 1 rank x 1 thread"; OMP_NUM_THREADS=1 dotnet $D 2 "$ws" 64 2>&1 | grep -E "TrainEpoch|trained in"
done
mpirun $root -np 2 dotnet $H bench X002
mpirun $root -np 1 dotnet $H bench X002
rm -rf "$ws"
