"""An exponential moving average (EMA) of a model's weights, evaluated and exported in their place.

``shadow = decay * shadow + (1 - decay) * weights`` after every optimizer step, over every floating-point variable
of the model: the trainable weights *and* the BatchNorm moving means and variances, as timm's ``ModelEmaV2`` (its
whole ``state_dict``) and torchvision's ``ExponentialMovingAverage`` (``use_buffers=True``) do; averaging only the
weights would pair averaged kernels with the last step's BN statistics. Integer state (seed generators, counters)
is left alone.

:class:`EMA` is a Keras callback. During ``fit``, the per-epoch validation (``on_test_begin`` / ``on_test_end``)
swaps the shadow in and the training weights back afterwards, so ``val_accuracy`` is the EMA model's; at the end of
training the shadow stays in the model, so the run's test figures (the last validation, or an ``evaluate`` on
resume) and the export use it. When ``fit`` runs several steps per compiled call (``steps_per_execution``), the
callback runs once per call and applies ``decay ** k`` for the ``k`` steps it covered (torchvision updates every
32 steps with its decay adjusted the same way); with one step per call the average is exact. For the first
``warmup_steps`` the shadow is the weights (torchvision restarts its EMA during the learning-rate warm-up).

The shadow lives where the weights do, and one compiled call per optimizer step updates it, so a GPU run never
copies its weights to the host for the average (only a checkpoint does, once per epoch). How depends on the backend
(:func:`_shadow`): on TensorFlow (Keras 3 and tf-keras, under any ``tf.distribute`` strategy) one non-trainable
``tf.Variable`` per averaged variable, assigned in place by one ``tf.function``; on Keras 3's other backends (JAX,
PyTorch) the shadow is a list of the backend's arrays, replaced each step by one pure function of ``keras.ops``
(``jax.jit``-compiled on JAX, where the arrays keep the weights' sharding, e.g. replicated under
``keras.distribution.DataParallel``). On JAX the trainer donates the model's arrays to each compiled step, so the
shadow never shares a buffer with the model: it is copied in and out (:meth:`_JaxShadow.copy`).

Resumption: :func:`keras_convnets.training.checkpoint.backup_and_restore` saves :meth:`EMA.save_state` beside each
epoch's weights in the same atomic checkpoint and restores it with them, so a killed run resumes with its average.
Variables are recognised by dtype name (in Keras 3 a variable's ``dtype`` is a string, in tf-keras a ``tf.DType``).
"""

import os
import zipfile

import numpy as np

STATE_FILE = "ema.npz"


def _dtype_name(variable) -> str:
    """A variable's dtype as a name (Keras 3 gives a string, tf-keras a ``tf.DType``)."""
    return str(getattr(variable.dtype, "name", variable.dtype))


def _is_float(variable) -> bool:
    return _dtype_name(variable).startswith(("float", "bfloat"))


def averaged_variables(model) -> list:
    """The variables an EMA of ``model`` averages: its floating-point weights, trainable or not (BN statistics)."""
    seen, found = set(), []
    for variable in model.weights:
        key = id(variable)
        if key not in seen and _is_float(variable):
            seen.add(key)
            found.append(variable)
    return found


def callback(decay: float, warmup_steps: int = 0):
    """The :class:`EMA` callback (a Keras ``Callback`` subclass, made when Keras is imported)."""
    return _ema_class()(decay, warmup_steps)


class _EMAMixin:
    """The :class:`EMA` callback's state and hooks, which need no Keras: :func:`_ema_class` mixes them into
    ``keras.callbacks.Callback`` once Keras is imported (:mod:`keras_convnets.models.backend` chooses which). They
    are defined here, not in that function, where every method would count toward its complexity."""

    def __init__(self, decay, warmup_steps=0):
        super().__init__()  # keras.callbacks.Callback's: it follows the mixin in EMA's bases
        self.decay = float(decay)
        self.warmup_steps = int(warmup_steps)
        self.shadow = None      # a _Shadow (_shadow); numpy arrays between load_state and training
        self.steps = 0          # optimizer steps the shadow has seen
        self._last = None       # the optimizer's iterations at the last update
        self._held = None       # the training weights while the shadow is swapped in

    def _variables(self):
        return averaged_variables(self.model)

    def _iterations(self):
        optimizer = getattr(self.model.optimizer, "inner_optimizer", self.model.optimizer)
        return int(optimizer.iterations.numpy())  # (np.asarray fails on tf-keras' mirrored variables)

    def on_train_begin(self, logs=None):
        if not isinstance(self.shadow, _Shadow):  # new, or arrays restored from a checkpoint
            self.shadow = _shadow(self._variables(), self.shadow)
        self._last = self._iterations()

    def on_train_batch_end(self, batch, logs=None):
        now = self._iterations()
        k = now - self._last
        if k <= 0:
            return
        self._last = now
        if self.steps + k <= self.warmup_steps:
            keep = 0.0  # the shadow is the weights
        else:
            keep = self.decay ** (k if self.steps >= self.warmup_steps else self.steps + k - self.warmup_steps)
        self.shadow.blend(keep)
        self.steps += k

    def swap_in(self):
        """Puts the shadow in the model, keeping the training weights to :meth:`swap_out`."""
        variables = self._variables()
        self._held = self.shadow.held(variables)
        for v, s in zip(variables, self.shadow.copies()):
            v.assign(s)

    def swap_out(self):
        if self._held is None:
            return
        for v, w in zip(self._variables(), self._held):
            v.assign(w)
        self._held = None

    def on_test_begin(self, logs=None):
        if self.shadow is not None and self._held is None:
            self.swap_in()

    def on_test_end(self, logs=None):
        self.swap_out()

    def on_train_end(self, logs=None):
        if self.shadow is not None:
            self.swap_in()
            self._held = None  # the average stays: the final evaluation and the export use it

    def save_state(self, directory):
        """Writes the shadow and step count into ``directory`` (beside a checkpoint's weights)."""
        if self.shadow is None:
            return
        with open(os.path.join(directory, STATE_FILE), "wb") as f:
            np.savez(f, *_arrays(self.shadow), steps=np.asarray(self.steps))
            f.flush()
            os.fsync(f.fileno())

    def read_state(self, directory):
        """``(shadow, steps)`` as :meth:`save_state` wrote them into ``directory``, checked against the model;
        nothing is changed. A ValueError when the file is missing, damaged or does not fit the model."""
        path = os.path.join(directory, STATE_FILE)
        if not os.path.isfile(path):
            raise ValueError(f"{path} is missing")
        try:
            with np.load(path) as saved:
                shadow = [saved[f"arr_{i}"] for i in range(len(saved.files) - 1)]
                steps = int(saved["steps"])
        except (OSError, KeyError, EOFError, zipfile.BadZipFile) as error:
            raise ValueError(f"{path} cannot be read ({error})") from None
        shapes = [tuple(v.shape) for v in self._variables()]
        if [s.shape for s in shadow] != shapes:
            raise ValueError(f"{path} does not fit the model")
        return shadow, steps

    def apply_state(self, state):
        """Takes a state :meth:`read_state` returned: the shadow and its step count."""
        self.shadow, self.steps = state

    def load_state(self, directory):
        """Restores what :meth:`save_state` wrote (:meth:`read_state`, then :meth:`apply_state`)."""
        self.apply_state(self.read_state(directory))


def _arrays(shadow) -> list:
    """The shadow's values as numpy arrays (a checkpoint's), whichever form it has."""
    return [np.asarray(value) for value in shadow]


def _shadow(variables, initial=None):
    """The shadow of ``variables`` for this process's backend, holding ``initial`` (arrays restored from a
    checkpoint) or the variables' current values."""
    from keras_convnets.models.backend import BACKEND

    if BACKEND == "tensorflow":
        return _TensorFlowShadow(variables, initial)
    if BACKEND == "jax":
        return _JaxShadow(variables, initial)
    return _KerasShadow(variables, initial)


class _Shadow:
    """What the callback asks of a shadow: its values in order (iterating it), ``blend(keep)``, ``held(variables)``
    (the model's values, kept while the shadow is swapped in) and ``copies()`` (the shadow's values to assign)."""

    values: list

    def __iter__(self):
        return iter(self.values)

    def __len__(self):
        return len(self.values)


class _TensorFlowShadow(_Shadow):
    """One non-trainable ``tf.Variable`` per variable, on its device and of its dtype, blended in place by one
    ``tf.function``: Keras 3 on TensorFlow and tf-keras (which has no ``keras.ops``), under any strategy."""

    def __init__(self, variables, initial=None):
        import tensorflow as tf

        values = initial if initial is not None else [tf.convert_to_tensor(v) for v in variables]
        self.values = [tf.Variable(tf.cast(value, _dtype_name(v)), trainable=False)
                       for v, value in zip(variables, values)]
        shadow = self.values

        @tf.function
        def blend(keep):
            # every shadow = keep * shadow + (1 - keep) * variable; keep = 0 copies the weights exactly (0 * s + 1 * w).
            # In float32 even in a bf16 run: TensorFlow's bf16 rewrite starts from convolutions and matmuls, and this
            # graph has none.
            for s, v in zip(shadow, variables):
                s.assign(tf.cast(keep, s.dtype) * s + tf.cast(1.0 - keep, s.dtype) * tf.convert_to_tensor(v))

        self.blend = lambda keep: blend(tf.constant(keep, tf.float64))

    @staticmethod
    def held(variables) -> list:
        import tensorflow as tf

        return [tf.identity(tf.convert_to_tensor(v)) for v in variables]

    def copies(self) -> list:
        import tensorflow as tf

        return [tf.convert_to_tensor(s) for s in self.values]


class _KerasShadow(_Shadow):
    """The shadow as the backend's arrays (Keras 3 off TensorFlow), replaced each step by :meth:`_update`, a pure
    function of ``keras.ops`` (run op by op here; :class:`_JaxShadow` compiles it)."""

    def __init__(self, variables, initial=None):
        from keras_convnets.models.backend import keras

        self.variables = variables
        if initial is None:
            self.values = self.copy([v.value for v in variables])
        else:
            self.values = [self._place(keras.ops.convert_to_tensor(value, _dtype_name(v)), v)
                           for v, value in zip(variables, initial)]
        self._step = self._compiled(self._update)

    @staticmethod
    def _update(keep, shadow, weights):
        from keras_convnets.models.backend import keras

        ops = keras.ops
        return [ops.cast(keep, s.dtype) * s + ops.cast(1.0 - keep, s.dtype) * ops.stop_gradient(w)
                for s, w in zip(shadow, weights)]

    @staticmethod
    def _compiled(function):
        return function

    @staticmethod
    def _place(value, variable):
        return value

    def copy(self, values) -> list:
        from keras_convnets.models.backend import keras

        return [keras.ops.copy(keras.ops.stop_gradient(value)) for value in values]

    def blend(self, keep):
        self.values = self._step(keep, self.values, [v.value for v in self.variables])

    def held(self, variables) -> list:
        return self.copy([v.value for v in variables])

    def copies(self) -> list:
        return self.copy(self.values)


class _JaxShadow(_KerasShadow):
    """:class:`_KerasShadow` on JAX: the update ``jax.jit``-compiled (one call per step; ``keep`` a traced
    argument, so one compilation), restored arrays placed with their variable's sharding, and copies made whenever
    an array goes into or comes out of the model, whose buffers the trainer donates to its compiled steps."""

    @staticmethod
    def _compiled(function):
        import jax

        return jax.jit(function)

    @staticmethod
    def _place(value, variable):
        import jax

        return jax.device_put(value, variable.value.sharding)


def _ema_class():
    from keras_convnets.models.backend import keras

    class EMA(_EMAMixin, keras.callbacks.Callback):
        """See the module docstring. ``shadow``: one variable per :func:`averaged_variables` entry."""

    return EMA
