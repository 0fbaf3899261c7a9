#!/usr/bin/env bash
# Fine-tuning time-to-accuracy benchmark (docs/benchmarks.md, issue 15), side by side in one run: RegNetML variants
# (a)-(d), then PyTorch (Debian's python3-torch) doing (b) and (c) on the same images and the same source model.
# The source model (RegNetX-002 on Fashion-MNIST classes 0-4) is trained on the first run and kept in
# $FOLDER/weights/regnetx_002.pycls_in1k.safetensors (timm layout; delete it to train it again).
# Usage: benchmarks/run_finetune.sh [folder=/tmp/regnetml-finetune] [per_class=30] [epochs=6] [source_per_class=300] [source_epochs=1] [rounds=1]
# (the defaults are sized for a shared, loaded 2-core machine; on a quiet one try 100 10 1000 2 3)
# Round 1 runs every RegNetML variant, then (b) and (c) from images held in memory (--images-in-memory: decoded MLImage
# rows, the counterpart of PyTorch's one prepared tensor), then PyTorch; each further round runs RegNetML's (b) and (c)
# both ways, then PyTorch's, so that the engines alternate and a slow spell of the machine does not fall on one of them only.
# FINETUNE_ARGS adds options of the .NET benchmark, e.g. FINETUNE_ARGS="--image-cache-mb 0" (decode every epoch).
set -euo pipefail
cd "$(dirname "$0")/.."
FOLDER=${1:-/tmp/regnetml-finetune}
PER_CLASS=${2:-30}
EPOCHS=${3:-6}
SOURCE_PER_CLASS=${4:-300}
SOURCE_EPOCHS=${5:-1}
ROUNDS=${6:-1}
dotnet build -c Release benchmarks/RegNetML.FashionMnist -v q -nologo
for round in $(seq 1 "$ROUNDS"); do
    echo "round $round"
    variants=abcde
    [ "$round" -gt 1 ] && variants=bc
    dotnet benchmarks/RegNetML.FashionMnist/bin/Release/net10.0/RegNetML.FashionMnist.dll "$EPOCHS" "$FOLDER" --finetune \
        --per-class "$PER_CLASS" --source-per-class "$SOURCE_PER_CLASS" --source-epochs "$SOURCE_EPOCHS" --threads 2 --variants "$variants" \
        ${FINETUNE_ARGS:-}
    dotnet benchmarks/RegNetML.FashionMnist/bin/Release/net10.0/RegNetML.FashionMnist.dll "$EPOCHS" "$FOLDER" --finetune \
        --per-class "$PER_CLASS" --source-per-class "$SOURCE_PER_CLASS" --source-epochs "$SOURCE_EPOCHS" --threads 2 --variants bc \
        --images-in-memory ${FINETUNE_ARGS:-}
    /usr/bin/python3 benchmarks/fashion_mnist/finetune_pytorch.py "$FOLDER" "$PER_CLASS" "$EPOCHS" 2
done
