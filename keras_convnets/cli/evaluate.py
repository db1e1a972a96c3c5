"""``keras-convnets evaluate DIR``: accuracy of a SavedModel on a tfds split or a folder of class folders, seen as
training evaluated it."""

from keras_convnets.cli.common import DATA_DIR_HELP, DIR_HELP, UsageError, one_line, saved_model_dir


def add(commands):
    p = commands.add_parser("evaluate", help="test accuracy of an exported SavedModel on a tfds split or an image "
                                             "folder",
                            description="Accuracy of DIR's SavedModel (DIR: a train --out directory or a SavedModel) "
                                        "on a tfds split or a folder of class folders, seen as training evaluated "
                                        "it.")
    p.add_argument("dir", help=DIR_HELP)
    p.add_argument("--dataset", help="tfds dataset or folder (default: the one recorded in DIR's run.json)")
    p.add_argument("--split", help="tfds split (default: the one training evaluated on: test, else validation, "
                                   "else the held-out part of train)")
    p.add_argument("--data-dir", help=DATA_DIR_HELP)
    p.add_argument("--batch-size", type=int, default=256, help="batch size (default 256)")
    p.add_argument("--tta", choices=("flip",), help="test-time augmentation: flip averages the probabilities of each "
                                                   "image and its horizontal mirror")
    p.set_defaults(func=run)


def _recorded_dataset(path):
    """The dataset the run that wrote the SavedModel at ``path`` trained on (its ``run.json``), or None."""
    from keras_convnets import run_directory

    found = run_directory.run_of_saved_model(path)
    if found is None:
        return None
    run_file, record = found
    try:
        return record["arguments"]["dataset"]
    except (KeyError, TypeError):
        raise UsageError(f"{run_file} is not a run record (a JSON object with arguments.dataset): pass "
                         "--dataset") from None


def run(args):
    from keras_convnets.data import catalog
    from keras_convnets.serving import inference

    path = saved_model_dir(args.dir)
    dataset = args.dataset or _recorded_dataset(path)
    if dataset is None:
        raise UsageError(f"{path} records no dataset (no run.json beside it): pass --dataset")
    import tensorflow as tf

    try:
        if dataset in catalog.DATASETS:
            catalog.dataset_info(dataset, args.data_dir, download=True)
        scores = inference.evaluate_saved_model(path, dataset, args.split, data_dir=args.data_dir,
                                                batch_size=args.batch_size, tta=args.tta)
    except ValueError as error:
        raise UsageError(str(error)) from None
    except (tf.errors.DataLossError, tf.errors.NotFoundError) as error:
        raise UsageError(f"{dataset}'s files cannot be read ({one_line(error)[:160]}); they are corrupt or missing: "
                         "prepare the dataset again or point --data-dir at a good copy") from None
    tta = f", test-time augmentation: {args.tta}" if args.tta else ""
    print(f"{dataset} {scores.split} accuracy: {scores.accuracy:.4f} ({scores.count} images{tta})")
    return 0
