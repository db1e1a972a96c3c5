"""A PyTorch peer of ``benchmarks/resnet20_cifar10.py``: the same ResNet-20 and recipe, trained in a plain PyTorch
loop on the same CIFAR-10 subset, so our training can be compared with PyTorch's on the spot, on any CPU (issue 32).

Our own code (written here, not copied): the network and the loop below follow the paper and our Keras code, and
every choice that could differ from ``keras_convnets`` is made the way ours makes it:

* **Network** (He et al. 2015, §4.2): 3x3 stem conv of 16, three stages of 3 basic blocks (16, 32, 64 filters),
  option-A shortcuts (subsample by 2, zero channels split evenly before and after, as ``OptionAShortcut``), global
  average pool, a 10-way linear layer: 269,722 trainable parameters (asserted). Strided convs pad 1 on every side
  (ours pads explicitly for the same grid). BN eps 1e-5, momentum 0.1 in PyTorch's terms (Keras' 0.9). Init: convs
  He-normal fan-out (``HE_FAN_OUT``), the classifier Glorot-uniform with zero bias (Keras' Dense defaults). ``--check
  keras`` copies our Keras model's weights into this one and compares outputs.
* **Recipe**: 30 epochs, batch 128 (the last batch of an epoch is the 50 left over: 41 steps, as ``fit`` does), SGD
  lr 0.1 with Nesterov momentum 0.9, cosine decay to 0 per step over all steps (Keras' ``CosineDecay``), coupled L2
  1e-4 in PyTorch's convention: ``weight_decay=1e-4`` on conv and linear *weights* only, 0 on BN's scale and offset
  and on the bias, exactly where ours puts ``L2(1e-4 / 2)`` (``LayerConfig``: conv and dense kernels), which adds the
  same ``1e-4 * w`` to the gradient. One difference of formulation remains: Keras' SGD folds the learning rate into
  the momentum buffer (``m = 0.9 m - lr g``), PyTorch applies the current rate to it (``b = 0.9 b + g; w -= lr
  (g + 0.9 b)``); with a constant rate they are the same, under the cosine the rate moves < 0.3% per step.
  Loss: softmax cross-entropy on the logits (Keras takes the logits from the model's softmax op).
* **Data**: the tfds ``cifar10`` splits read from ``TFDS_DATA_DIR`` with tensorflow_datasets into memory once, in a
  child process (``cifar10_arrays.py``; timed apart; ``--arrays`` reads the file it wrote instead), then PyTorch
  only: per epoch a seeded permutation, per image a random 32x32 crop of the image zero-padded by 4 (uint8 0, before
  normalisation, as ours) and a random horizontal flip, done for a whole batch in one gather; then
  ``(x / 255 - mean) / std`` with our CIFAR-10 statistics.
* **Each epoch** is evaluated on the test split (as ``fit``'s validation); the test accuracy printed is the last
  epoch's (float32 runs) or a float32 evaluation after training (bf16, as ours reports the float32 model).
* **Precision**: ``float32``, or ``bf16``: ``torch.autocast("cpu", dtype=torch.bfloat16)`` around the forward pass
  and the loss, with ``channels_last`` (autocast's CPU policy keeps batch norm, softmax and the loss in float32).
  ``--channels-last`` gives float32 the same layout. On a CPU without native bf16 (AVX2) PyTorch emulates bf16.
* **Threads**: ``torch.set_num_threads(--threads)``, default every core the process may run on (its CPU
  affinity, as TensorFlow sizes its pools).

Prints one ``RESULT {json}`` line (times in seconds: ``startup`` is the imports, ``data`` the tfds read, ``epochs``
per-epoch train and evaluation times, ``steps`` the steady-state step times) and a summary line.

    python benchmarks/torch_resnet20.py [--epochs 30] [--precision float32|bf16] [--seed 0] [--channels-last]
    python benchmarks/torch_resnet20.py --check keras      # the same network and update as keras_convnets'?
"""

import time

START = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

#: Our CIFAR-10 statistics (keras_convnets.data.catalog.DATASETS["cifar10"]): pixels in [0, 1], per channel.
MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
#: The paper's trainable parameters of CIFAR ResNet-20 (option A), as tests/test_models.py's REFERENCE.
RESNET20_PARAMETERS = 269_722
RESULT = "RESULT "


class Block(nn.Module):
    """Basic block: 3x3 conv-BN-ReLU, 3x3 conv-BN, plus the option-A shortcut, ReLU."""

    def __init__(self, in_channels, channels, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels, eps=1e-5, momentum=0.1)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels, eps=1e-5, momentum=0.1)
        self.stride, self.extra = stride, channels - in_channels

    def shortcut(self, x):
        """Option A: every ``stride``-th pixel, the new channels zero, split before / after the input's."""
        if self.stride == 1 and not self.extra:
            return x
        x = x[:, :, ::self.stride, ::self.stride]
        return F.pad(x, (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class ResNet20(nn.Module):
    """He et al.'s CIFAR ResNet-20: 6n+2 layers with n = 3."""

    def __init__(self, classes=10, n=3):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16, eps=1e-5, momentum=0.1)
        blocks, channels = [], 16
        for stage, width in enumerate((16, 32, 64)):
            for index in range(n):
                blocks.append(Block(channels, width, 2 if stage and not index else 1))
                channels = width
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        nn.init.xavier_uniform_(self.fc.weight)
        nn.init.zeros_(self.fc.bias)

    def forward(self, x):
        x = self.blocks(F.relu(self.bn1(self.conv1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def parameter_groups(model, weight_decay):
    """Coupled L2 where ours puts it: conv and linear weights decay, BN's scale / offset and the bias do not."""
    decay = [p for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)) for p in [m.weight]]
    ids = {id(p) for p in decay}
    rest = [p for p in model.parameters() if id(p) not in ids]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]


def cosine(step, total, peak):
    """Keras' ``CosineDecay(peak, total)`` at optimizer step ``step`` (0-based), alpha 0."""
    return peak * 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))


def load_cifar10(data_dir, arrays=None):
    """``{split: (uint8 [N, 3, 32, 32] tensor, int64 [N] tensor)}`` for train and test, from ``arrays`` (an ``.npz``
    that ``cifar10_arrays.py`` wrote) or read whole with tfds in a child process running it: this process never
    imports TensorFlow."""
    with tempfile.TemporaryDirectory(prefix="cifar10_arrays_") as tmp:
        if arrays is None:
            arrays = os.path.join(tmp, "cifar10.npz")
            command = [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "cifar10_arrays.py"),
                       arrays] + (["--data-dir", data_dir] if data_dir else [])
            subprocess.run(command, check=True, env=dict(
                os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3")))
        with np.load(arrays) as loaded:
            return {name: (torch.from_numpy(np.ascontiguousarray(loaded[f"{name}_images"].transpose(0, 3, 1, 2))),
                           torch.from_numpy(loaded[f"{name}_labels"])) for name in ("train", "test")}


class Augment:
    """Per-image pad-4 random crop and horizontal flip of uint8 ``[N, 3, 32, 32]`` images, a batch at a time: the
    images are padded once; a batch is one gather with each image's own row and column indices (a flip is the
    columns reversed)."""

    def __init__(self, images, generator, pad=4):
        self.padded = F.pad(images, (pad, pad, pad, pad))
        self.size, self.pad, self.generator = images.shape[-1], pad, generator
        self.span = torch.arange(self.size)

    def __call__(self, index):
        count = index.numel()
        offsets = torch.randint(0, 2 * self.pad + 1, (2, count, 1), generator=self.generator)
        flip = torch.rand(count, 1, generator=self.generator) < 0.5
        rows = offsets[0] + self.span
        cols = offsets[1] + torch.where(flip, self.size - 1 - self.span, self.span)
        return self.padded[index[:, None, None, None], torch.arange(3)[None, :, None, None],
                           rows[:, None, :, None], cols[:, None, None, :]]


def normalize(images, memory_format):
    mean = torch.tensor(MEAN).view(1, 3, 1, 1) * 255.0
    std = torch.tensor(STD).view(1, 3, 1, 1) * 255.0
    return ((images.float() - mean) / std).contiguous(memory_format=memory_format)


def evaluate(model, images, labels, batch, bf16, memory_format):
    """Test accuracy and mean loss, in file order, BN in inference mode."""
    model.eval()
    correct, loss = 0, 0.0
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for start in range(0, len(labels), batch):
            logits = model(normalize(images[start:start + batch], memory_format))
            y = labels[start:start + batch]
            loss += float(F.cross_entropy(logits.float(), y, reduction="sum"))
            correct += int((logits.argmax(1) == y).sum())
    model.train()
    return correct / len(labels), loss / len(labels)


class Trainer:
    """The model, its optimizer and the seeded augmentation of one run; :meth:`step` is one SGD step on the images
    at ``index`` of the training split, :meth:`epoch` one seeded pass over it."""

    def __init__(self, args, train_data):
        torch.manual_seed(args.seed)
        self.args, self.images, self.labels = args, *train_data
        self.bf16 = args.precision == "bf16"
        self.memory_format = torch.channels_last if self.bf16 or args.channels_last else torch.contiguous_format
        self.model = ResNet20().to(memory_format=self.memory_format)
        count = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
        assert count == RESNET20_PARAMETERS, f"ResNet-20 has {count:,} trainable parameters, not " \
                                             f"{RESNET20_PARAMETERS:,}"
        self.optimizer = torch.optim.SGD(parameter_groups(self.model, args.weight_decay), lr=args.lr, momentum=0.9,
                                         nesterov=True)
        self.steps_per_epoch = math.ceil(len(self.labels) / args.batch)
        self.total, self.done = self.steps_per_epoch * args.epochs, 0
        self.augment = Augment(self.images, torch.Generator().manual_seed(args.seed))

    def step(self, index):
        """One SGD step on the training images at ``index``; returns the summed loss and the correct count."""
        x, y = normalize(self.augment(index), self.memory_format), self.labels[index]
        for group in self.optimizer.param_groups:
            group["lr"] = cosine(self.done, self.total, self.args.lr)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            logits = self.model(x)
            loss = F.cross_entropy(logits, y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.done += 1
        return loss.detach().float() * len(y), (logits.detach().argmax(1) == y).sum()

    def order(self):
        """The next epoch's seeded order of the training images."""
        return torch.randperm(len(self.labels), generator=self.augment.generator)

    def epoch(self):
        """One epoch; returns the steps' seconds, the mean loss and the accuracy."""
        order, batch = self.order(), self.args.batch
        seconds, loss_sum, correct = [], torch.zeros(()), torch.zeros((), dtype=torch.int64)
        for start in range(0, len(self.labels), batch):
            began = time.perf_counter()
            loss, right = self.step(order[start:start + batch])
            loss_sum += loss
            correct += right
            seconds.append(time.perf_counter() - began)
        return seconds, float(loss_sum) / len(self.labels), int(correct) / len(self.labels)


def train(args, data):
    trainer = Trainer(args, data["train"])
    epochs = []
    for epoch in range(args.epochs):
        began = time.perf_counter()
        step_seconds, loss, accuracy = trainer.epoch()
        trained = time.perf_counter()
        val_accuracy, val_loss = evaluate(trainer.model, *data["test"], args.batch, trainer.bf16,
                                          trainer.memory_format)
        epochs.append({"epoch": epoch + 1, "train": trained - began, "eval": time.perf_counter() - trained,
                       "steps": step_seconds, "loss": loss, "accuracy": accuracy, "val_loss": val_loss,
                       "val_accuracy": val_accuracy})
        if args.verbose:
            print(f"epoch {epoch + 1}/{args.epochs}: {trained - began:.1f} s train, loss {loss:.4f}, accuracy "
                  f"{accuracy:.4f}, val_accuracy {val_accuracy:.4f}", flush=True)
    return trainer.model, epochs, trainer.memory_format


def run(args):
    torch.set_num_threads(args.threads)
    imported = time.perf_counter()
    data = load_cifar10(args.data_dir or os.environ.get("TFDS_DATA_DIR") or None, args.arrays)
    loaded = time.perf_counter()
    model, epochs, memory_format = train(args, data)
    trained = time.perf_counter()
    test_accuracy = epochs[-1]["val_accuracy"]
    if args.precision == "bf16":  # the float32 model's accuracy, as ours reports
        test_accuracy = evaluate(model, *data["test"], args.batch, False, memory_format)[0]
    with tempfile.TemporaryDirectory(prefix="torch_resnet20_") as tmp:  # the file is written in either case
        torch.save(model.state_dict(), os.path.join(args.out or tmp, "resnet20.pt"))
        done = time.perf_counter()
    steady = [s for e in epochs[1:] for s in e["steps"]] or epochs[0]["steps"]
    return {"side": "pytorch", "precision": args.precision, "channels_last": memory_format == torch.channels_last,
            "threads": torch.get_num_threads(), "interop_threads": torch.get_num_interop_threads(),
            "startup": imported - START, "data": loaded - imported, "training": trained - loaded,
            "final": done - trained, "wall": done - START, "test_accuracy": test_accuracy,
            "step_median": statistics.median(steady), "steps_per_epoch": len(epochs[0]["steps"]),
            "epochs": [{k: v for k, v in e.items() if k != "steps"} for e in epochs], "torch": torch.__version__}


def check_against_keras():
    """Copies keras_convnets' ResNet20 (random weights, BN statistics made non-trivial) into this network and
    prints the largest output difference in inference and in training mode (the same function up to float32
    rounding shows the same network), then trains both copies 3 SGD steps with the recipe's update (lr 0.1,
    Nesterov 0.9, coupled L2 1e-4 where each puts it) on the same random batches and prints both losses (the same
    losses show the same update rule, weight decay included)."""
    import torch._dynamo  # noqa: F401  (torch.optim imports it; after TensorFlow that import crashes)

    from keras_convnets import ResNet20 as KerasResNet20
    from keras_convnets.models.backend import keras
    keras_model = KerasResNet20(classifier_activation=None, weight_decay=1e-4)
    model = ResNet20()
    rng = np.random.default_rng(0)
    for layer in keras_model.layers:
        if layer.weights and "_bn" in layer.name:  # gamma, beta, moving mean, moving variance
            layer.set_weights([rng.uniform(0.5, 1.5, w.shape).astype("float32") if i in (0, 3) else
                               rng.normal(0, 0.1, w.shape).astype("float32") for i, w in enumerate(layer.weights)])
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            tensor.copy_(torch.from_numpy(keras_weight(keras_model, name)))
    x = rng.normal(size=(8, 32, 32, 3)).astype("float32")
    for training in (False, True):
        model.train(training)
        ours = np.asarray(keras_model(x, training=training))
        theirs = model(torch.from_numpy(x.transpose(0, 3, 1, 2))).detach().numpy()
        print(f"{'training' if training else 'inference'} mode: max |keras - torch| = {np.abs(ours - theirs).max():.2e}"
              f" (max |logit| {np.abs(ours).max():.2f})")
    keras_model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9, nesterov=True),
                        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    optimizer = torch.optim.SGD(parameter_groups(model, 1e-4), lr=0.1, momentum=0.9, nesterov=True)
    decayed = optimizer.param_groups[0]["params"]
    for step in range(3):
        x, y = rng.normal(size=(32, 32, 32, 3)).astype("float32"), rng.integers(0, 10, 32)
        keras_loss = float(keras_model.train_on_batch(x, y))  # the cross-entropy plus the L2 terms
        loss = F.cross_entropy(model(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())), torch.from_numpy(y))
        l2 = 1e-4 / 2 * sum(float((p.detach() ** 2).sum()) for p in decayed)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        print(f"SGD step {step + 1}: loss + L2 keras {keras_loss:.6f}, torch {float(loss.detach()) + l2:.6f}")


def keras_weight(keras_model, name):
    """The numpy array of ``keras_model`` that this network's state-dict entry ``name`` holds, in PyTorch's layout."""
    parts = name.split(".")
    if parts[0] in ("conv1", "bn1"):
        layer = "conv1_conv" if parts[0] == "conv1" else "conv1_bn"
    elif parts[0] == "fc":
        weights = keras_model.get_layer("predictions").get_weights()
        return weights[0].T.copy() if parts[1] == "weight" else weights[1]
    else:
        index = int(parts[1])
        kind = "conv" if parts[2].startswith("conv") else "bn"
        layer = f"conv{index // 3 + 2}_block{index % 3 + 1}_{parts[2][-1]}_{kind}"
    weights = keras_model.get_layer(layer).get_weights()
    if layer.endswith("_conv"):
        return weights[0].transpose(3, 2, 0, 1).copy()
    field = parts[-1]
    if field == "num_batches_tracked":
        return np.array(0)
    return weights[{"weight": 0, "bias": 1, "running_mean": 2, "running_var": 3}[field]]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--precision", choices=("float32", "bf16"), default="float32")
    parser.add_argument("--channels-last", action="store_true", help="float32 in channels_last too (bf16 always is)")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                        help="torch.set_num_threads (default: the cores this process may run on)")
    parser.add_argument("--data-dir")
    parser.add_argument("--arrays", help="the splits as cifar10_arrays.py wrote them (default: read them now)")
    parser.add_argument("--out", help="where the state dict is saved (default: a temporary directory, deleted)")
    parser.add_argument("--verbose", action="store_true", help="a line per epoch")
    parser.add_argument("--check", choices=("keras",), help="compare the network with keras_convnets' ResNet20")
    args = parser.parse_args(argv)
    if args.check:
        check_against_keras()
        return 0
    result = run(args)
    print(RESULT + json.dumps(result), flush=True)
    print(f"PyTorch {torch.__version__} ResNet-20, {args.epochs} epochs on the CIFAR-10 subset, {args.precision}"
          f"{' channels_last' if result['channels_last'] else ''}, {result['threads']} threads: test accuracy "
          f"{result['test_accuracy']:.4f} in {result['wall'] / 60:.1f} min of process ({result['training']:.0f} s "
          f"training, median step {1000 * result['step_median']:.0f} ms)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
