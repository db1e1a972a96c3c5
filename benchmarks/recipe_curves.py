"""The paper recipe vs the modern recipe (issue 22): test accuracy per epoch of two runs' ``history.json``, as a PNG
and a line of numbers each. The runs are made by the command line (README "Modern recipe"):

    keras-convnets train resnet20 --dataset cifar10 --epochs 60 --seed 0 --out runs/paper60
    keras-convnets train resnet20 --dataset cifar10 --epochs 60 --seed 0 --recipe modern --out runs/modern60
    python benchmarks/recipe_curves.py runs/paper60 runs/modern60 --out benchmarks/recipe_curves.png

A run still training is plotted as far as it got (its last epoch is said).
"""

import argparse
import json
import os


def _history(out):
    with open(os.path.join(out, "history.json")) as f:
        return json.load(f)


def _record(out):
    try:
        with open(os.path.join(out, "run.json")) as f:
            return json.load(f)
    except OSError:
        return {}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("paper", help="the paper recipe's train --out directory")
    parser.add_argument("modern", help="the modern recipe's train --out directory")
    parser.add_argument("--out", default="recipe_curves.png", help="PNG to write")
    parser.add_argument("--title", default="ResNet-20, CIFAR-10 subset (5,170 train / 1,017 test), seed 0")
    args = parser.parse_args()

    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4.8))
    ax = fig.subplots()
    for out, label, color in ((args.paper, "paper recipe (He et al. 2016, piecewise)", "tab:blue"),
                              (args.modern, "modern recipe (torchvision v2 scaled; EMA weights)", "tab:red")):
        rows = _history(out)
        record = _record(out)
        epochs = [row["epoch"] for row in rows]
        accuracy = [100 * row["val_accuracy"] for row in rows]
        planned = (record.get("arguments") or {}).get("epochs", "?")
        ax.plot(epochs, accuracy, color=color, linewidth=2, label=label)
        final = record.get("test_accuracy") if record.get("status") == "complete" else None
        best = max(accuracy)
        print(f"{label}: {len(rows)}/{planned} epochs, last epoch {accuracy[-1]:.1f}%, best {best:.1f}% (epoch "
              f"{epochs[accuracy.index(best)]})" + (f", final test accuracy {100 * final:.2f}%" if final else
                                                     ", not complete") +
              f", {sum(row['seconds'] for row in rows) / 60:.0f} min of epochs")
    ax.set_xlabel("epoch", fontsize=13)
    ax.set_ylabel("test accuracy (%)", fontsize=13)
    ax.set_title(args.title, fontsize=12)
    ax.tick_params(labelsize=11)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=11, loc="lower right")
    fig.tight_layout()
    fig.savefig(args.out, dpi=90)
    print(f"figure: {args.out}")


if __name__ == "__main__":
    main()
