"""The reference ResNet in PyTorch, timed like bench:train times it in TensorFlow.js.

Both memory layouts are timed (NCHW and channels_last) and the faster of each is reported, so
the comparison is against PyTorch at its best on this machine. Inference is timed as the model
is (eval mode) and with its batch normalisations fused into the convolutions by torch.fx, as
our services fold them. Runs on --threads threads (bench:train passes its own count) and prints
one JSON line: {"torch_version", "threads", "train_img_s", "infer_img_s_b32",
"infer_img_s_b32_fused", "parameters", "layouts"}, "threads" as torch reports it.
With --export-onnx it also writes the BN-fused eval model as ONNX for ONNX Runtime (--vs-ort).
Used by `npm run bench:train -- --vs-torch`; needs Debian's python3-torch.
"""
import argparse
import json
import time

import torch
from torch import nn
from torch.fx.experimental.optimization import fuse


class BasicBlock(nn.Module):
    def __init__(self, inputs: int, filters: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, filters, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(filters, eps=1e-3, momentum=0.1)
        self.conv2 = nn.Conv2d(filters, filters, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(filters, eps=1e-3, momentum=0.1)
        self.projection = None
        if stride != 1 or inputs != filters:
            self.projection = nn.Sequential(
                nn.Conv2d(inputs, filters, 1, stride, bias=False), nn.BatchNorm2d(filters, eps=1e-3, momentum=0.1)
            )

    def forward(self, x):
        branch = torch.relu(self.bn1(self.conv1(x)))
        branch = self.bn2(self.conv2(branch))
        shortcut = x if self.projection is None else self.projection(x)
        return torch.relu(branch + shortcut)


def reference_resnet() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, 1, 1, bias=False),
        nn.BatchNorm2d(32, eps=1e-3, momentum=0.1),
        nn.ReLU(),
        BasicBlock(32, 32, 1),
        BasicBlock(32, 64, 2),
        BasicBlock(64, 64, 1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(0.5),
        nn.Linear(64, 10),
    )


def images_per_second(step, batch: int, warmup: int, seconds: float) -> float:
    for _ in range(warmup):
        step()
    steps = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        step()
        steps += 1
    return steps * batch / (time.perf_counter() - start)


def export_onnx(path: str) -> None:
    torch.manual_seed(1)
    exported = fuse(reference_resnet().eval())
    torch.onnx.export(
        exported,
        torch.randn(1, 1, 28, 28),
        path,
        input_names=["image"],
        output_names=["logits"],
        dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
        opset_version=13,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--train-seconds", type=float, default=8)
    parser.add_argument("--infer-seconds", type=float, default=3)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument(
        "--export-onnx",
        metavar="FILE",
        help="also write the model (eval mode, BN fused, NCHW, dynamic batch) as ONNX, for ONNX Runtime",
    )
    parser.add_argument("--only-export", action="store_true", help="with --export-onnx: write the file, time nothing")
    args = parser.parse_args()

    if args.export_onnx:
        export_onnx(args.export_onnx)
        if args.only_export:
            return

    # Debian's torch starts with one thread.
    torch.set_num_threads(args.threads)
    layouts = {}
    for layout, memory_format in (("nchw", torch.contiguous_format), ("channels_last", torch.channels_last)):
        torch.manual_seed(1)
        model = reference_resnet().to(memory_format=memory_format)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        loss_fn = nn.CrossEntropyLoss()
        images = torch.randn(args.batch, 1, 28, 28).to(memory_format=memory_format)
        labels = torch.arange(args.batch) % 10

        def train_step():
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(images), labels)
            loss.backward()
            optimizer.step()

        model.train()
        train = images_per_second(train_step, args.batch, args.warmup, args.train_seconds)
        model.eval()
        batch32 = torch.randn(32, 1, 28, 28).to(memory_format=memory_format)

        def infer_step():
            with torch.no_grad():
                model(batch32)

        infer = images_per_second(infer_step, 32, args.warmup, args.infer_seconds)
        fused = fuse(model)  # conv + BN folded (eval mode); a copy, the model is untouched

        def infer_fused_step():
            with torch.no_grad():
                fused(batch32)

        infer_fused = images_per_second(infer_fused_step, 32, args.warmup, args.infer_seconds)
        layouts[layout] = {
            "train_img_s": round(train, 1),
            "infer_img_s_b32": round(infer, 1),
            "infer_img_s_b32_fused": round(infer_fused, 1),
        }

    print(
        json.dumps(
            {
                "torch_version": torch.__version__,
                "threads": torch.get_num_threads(),
                "train_img_s": max(figures["train_img_s"] for figures in layouts.values()),
                "infer_img_s_b32": max(figures["infer_img_s_b32"] for figures in layouts.values()),
                "infer_img_s_b32_fused": max(figures["infer_img_s_b32_fused"] for figures in layouts.values()),
                "parameters": sum(p.numel() for p in reference_resnet().parameters()),
                "layouts": layouts,
            }
        )
    )


if __name__ == "__main__":
    main()
