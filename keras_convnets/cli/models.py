"""``keras-convnets models``: the model registry as a table."""


def add(commands):
    p = commands.add_parser("models", help="list the registered models", description="The model registry as a table.")
    p.add_argument("--dataset", choices=("cifar", "imagenet"), help="only models designed for this input")
    p.set_defaults(func=run)


def run(args):
    from keras_convnets.models import registry

    rows = [("name", "factory", "family", "input", "params", "GMACs", "reference")]
    for name in registry.list_models(args.dataset):
        info = registry.model_info(name)
        params, flops = getattr(info, "params", None), getattr(info, "flops", None)
        rows.append((info.name, info.factory.__name__, info.family, f"{info.input_size}x{info.input_size}",
                     "-" if params is None else f"{params:,}", "-" if flops is None else f"{flops / 1e9:.3g}",
                     info.reference))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return 0
