"""Independent numpy reference implementation of the ONNX RNN, GRU and LSTM operators.

This module is a test oracle: it follows the operator text of the ONNX
specification (opset 22) step by step and deliberately favours clarity over
speed.  It imports nothing but numpy so that it cannot share a bug with
``onnx.reference`` or onnxruntime.

Conventions shared by the three public functions:

* Tensors use the ONNX input/output layout.  With ``layout=0`` (the default)
  X is ``[seq, batch, input]``, initial states are ``[dirs, batch, hidden]``,
  Y is ``[seq, dirs, batch, hidden]`` and the final states are
  ``[dirs, batch, hidden]``.  With ``layout=1`` (batch first) X is
  ``[batch, seq, input]``, states are ``[batch, dirs, hidden]`` and Y is
  ``[batch, seq, dirs, hidden]``.
* W, R, B (and P for LSTM) always have ``dirs`` as their first axis, with the
  gates stacked along the next axis in the ONNX order (GRU: z, r, h;
  LSTM: i, o, f, c; peepholes: i, o, f).
* ``sequence_lens`` (``[batch]``) gives each batch element its own length:
  time steps at or past that length produce zeros in Y and leave the state
  untouched, so the final state is the state after the last real step.  The
  reverse direction therefore starts at each sequence's real end.  A length
  of 0 returns the initial state unchanged.
* Arithmetic is done in float64 and the results are cast back to X's dtype.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["gru", "lstm", "rnn"]

Activation = Callable[[np.ndarray], np.ndarray]
# A step function maps (x_t [batch, input], states) to the new states; the
# first state is always the hidden state h, which is what Y records.
StepFn = Callable[[np.ndarray, tuple[np.ndarray, ...]], tuple[np.ndarray, ...]]

_DIRECTIONS = {"forward": 1, "reverse": 1, "bidirectional": 2}


# --------------------------------------------------------------------------
# Activation functions
# --------------------------------------------------------------------------


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # Written via tanh so large negative inputs do not overflow exp().
    return 0.5 * (np.tanh(0.5 * x) + 1.0)


def _softplus(x: np.ndarray) -> np.ndarray:
    # log(1 + exp(x)) computed without overflow for large x.
    return np.logaddexp(0.0, x)


# name (lower case) -> (factory(alpha, beta) -> activation, default alpha,
# default beta).  A default of None means the function does not take that
# parameter, so it does not consume an entry of activation_alpha/_beta.
# Defaults follow the stand-alone ONNX operators of the same name.
_ACTIVATIONS: dict[
    str,
    tuple[Callable[[float, float], Activation], float | None, float | None],
] = {
    "relu": (lambda a, b: lambda x: np.maximum(x, 0.0), None, None),
    "tanh": (lambda a, b: np.tanh, None, None),
    "sigmoid": (lambda a, b: _sigmoid, None, None),
    "affine": (lambda a, b: lambda x: a * x + b, 1.0, 0.0),
    "leakyrelu": (lambda a, b: lambda x: np.where(x >= 0.0, x, a * x), 0.01, None),
    "thresholdedrelu": (lambda a, b: lambda x: np.where(x > a, x, 0.0), 1.0, None),
    "scaledtanh": (lambda a, b: lambda x: a * np.tanh(b * x), 1.0, 1.0),
    "hardsigmoid": (
        lambda a, b: lambda x: np.clip(a * x + b, 0.0, 1.0),
        0.2,
        0.5,
    ),
    "elu": (
        lambda a, b: lambda x: np.where(x >= 0.0, x, a * np.expm1(np.minimum(x, 0.0))),
        1.0,
        None,
    ),
    "softsign": (lambda a, b: lambda x: x / (1.0 + np.abs(x)), None, None),
    "softplus": (lambda a, b: _softplus, None, None),
}


def _resolve_activations(
    names: Sequence[str] | None,
    defaults: Sequence[str],
    num_directions: int,
    alphas: Sequence[float] | None,
    betas: Sequence[float] | None,
) -> list[list[Activation]]:
    """Turn the ``activations`` attribute into one list of callables per direction.

    ``names`` holds ``len(defaults)`` entries per direction, forward first.  A
    bidirectional op given only one direction's worth reuses it for both
    (onnxruntime accepts this too).  ``alphas``/``betas`` are consumed in order,
    one value per activation that takes the parameter, as the spec says.
    """
    per_dir = len(defaults)
    names = list(defaults) * num_directions if names is None else list(names)
    if len(names) == per_dir and num_directions == 2:
        names = names * 2
    if len(names) != per_dir * num_directions:
        raise ValueError(f"expected {per_dir * num_directions} activations, got {len(names)}")
    alpha_iter = iter(alphas or ())
    beta_iter = iter(betas or ())
    funcs: list[Activation] = []
    for name in names:
        try:
            factory, default_alpha, default_beta = _ACTIVATIONS[name.lower()]
        except KeyError:
            raise ValueError(f"unsupported activation {name!r}") from None
        alpha = next(alpha_iter, default_alpha) if default_alpha is not None else 0.0
        beta = next(beta_iter, default_beta) if default_beta is not None else 0.0
        funcs.append(factory(alpha, beta))
    return [funcs[d * per_dir : (d + 1) * per_dir] for d in range(num_directions)]


# --------------------------------------------------------------------------
# Shared machinery: one direction's time loop, and direction/layout handling
# --------------------------------------------------------------------------


def _run_one_direction(
    step: StepFn,
    x: np.ndarray,
    states: tuple[np.ndarray, ...],
    lengths: np.ndarray,
    reverse: bool,
) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """Run ``step`` over time for one direction, honouring per-batch lengths.

    x: [seq, batch, input]; each state: [batch, hidden]; lengths: [batch].
    Returns Y for this direction, [seq, batch, hidden], and the final states.
    """
    seq_len = x.shape[0]
    hidden = states[0].shape[-1]
    y = np.zeros((seq_len, x.shape[1], hidden), dtype=np.float64)  # [seq, batch, hidden]
    time_steps = range(seq_len - 1, -1, -1) if reverse else range(seq_len)
    for t in time_steps:
        # Batch elements whose sequence has already ended (forward) or has not
        # started yet (reverse, walking back from the padded tail) must not
        # move their state; masking the update gives exactly that.
        active = (t < lengths)[:, None]  # [batch, 1]
        new_states = step(x[t], states)
        states = tuple(np.where(active, n, s) for n, s in zip(new_states, states, strict=True))
        y[t] = np.where(active, new_states[0], 0.0)  # padded steps output zeros
    return y, states


def _run_recurrence(
    X: np.ndarray,
    initial_states: Sequence[np.ndarray | None],
    hidden_size: int,
    direction: str,
    sequence_lens: np.ndarray | None,
    layout: int,
    make_step: Callable[[int], StepFn],
) -> tuple[np.ndarray, ...]:
    """Handle everything that RNN, GRU and LSTM have in common.

    Converts layout, fills default (zero) initial states and full sequence
    lengths, runs ``make_step(d)`` for each direction d (direction 1 of a
    bidirectional op runs in reverse), and stacks the results.

    Returns (Y, final_state_0, final_state_1, ...) in the requested layout,
    cast to X's dtype.
    """
    if direction not in _DIRECTIONS:
        raise ValueError(f"unknown direction {direction!r}")
    if layout not in (0, 1):
        raise ValueError(f"layout must be 0 or 1, got {layout}")
    num_directions = _DIRECTIONS[direction]
    out_dtype = np.asarray(X).dtype
    x = np.asarray(X, dtype=np.float64)
    if layout == 1:
        x = x.transpose(1, 0, 2)  # [batch, seq, input] -> [seq, batch, input]
    seq_len, batch = x.shape[:2]

    states0 = []
    for s in initial_states:
        if s is None:
            s = np.zeros((num_directions, batch, hidden_size))  # [dirs, batch, hidden]
        else:
            s = np.asarray(s, dtype=np.float64)
            if layout == 1:
                s = s.transpose(1, 0, 2)  # [batch, dirs, hidden] -> [dirs, batch, hidden]
        states0.append(s)

    if sequence_lens is None:
        lengths = np.full(batch, seq_len, dtype=np.int64)  # [batch]
    else:
        lengths = np.asarray(sequence_lens, dtype=np.int64).reshape(batch)

    ys = []
    finals: list[list[np.ndarray]] = [[] for _ in states0]
    for d in range(num_directions):
        reverse = direction == "reverse" or d == 1
        y_d, final_d = _run_one_direction(
            make_step(d), x, tuple(s[d] for s in states0), lengths, reverse
        )
        ys.append(y_d)
        for collected, state in zip(finals, final_d, strict=True):
            collected.append(state)

    y = np.stack(ys, axis=1)  # [seq, dirs, batch, hidden]
    final_states = [np.stack(f, axis=0) for f in finals]  # each [dirs, batch, hidden]
    if layout == 1:
        y = y.transpose(2, 0, 1, 3)  # -> [batch, seq, dirs, hidden]
        final_states = [f.transpose(1, 0, 2) for f in final_states]  # -> [batch, dirs, hidden]
    return tuple(a.astype(out_dtype) for a in (y, *final_states))


def _split_weights(
    W: np.ndarray,
    R: np.ndarray,
    B: np.ndarray | None,
    num_gates: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Return float64 W, R, the input bias Wb and recurrence bias Rb, and hidden size.

    W: [dirs, gates*hidden, input], R: [dirs, gates*hidden, hidden],
    B: [dirs, 2*gates*hidden] = [Wb | Rb] (zeros when absent).
    Wb, Rb: [dirs, gates*hidden].
    """
    w = np.asarray(W, dtype=np.float64)
    r = np.asarray(R, dtype=np.float64)
    hidden = r.shape[-1]
    if w.shape[1] != num_gates * hidden or r.shape[1] != num_gates * hidden:
        raise ValueError(
            f"W/R second axis must be {num_gates}*hidden={num_gates * hidden}, "
            f"got {w.shape[1]} and {r.shape[1]}"
        )
    if B is None:
        b = np.zeros((w.shape[0], 2 * num_gates * hidden))
    else:
        b = np.asarray(B, dtype=np.float64)
    wb, rb = np.split(b, 2, axis=1)
    return w, r, wb, rb, hidden


def _clipper(clip: float | None) -> Callable[[np.ndarray], np.ndarray]:
    """The spec applies ``clip`` to every activation input, i.e. gate pre-activations."""
    if clip is None:
        return lambda v: v
    return lambda v: np.clip(v, -clip, clip)


def _check_directions(W: np.ndarray, direction: str) -> None:
    expected = _DIRECTIONS.get(direction)
    if expected is not None and np.shape(W)[0] != expected:
        raise ValueError(
            f"direction={direction!r} needs W with {expected} directions, got shape {np.shape(W)}"
        )


# --------------------------------------------------------------------------
# Public operators
# --------------------------------------------------------------------------


def rnn(
    X: np.ndarray,
    W: np.ndarray,
    R: np.ndarray,
    B: np.ndarray | None = None,
    initial_h: np.ndarray | None = None,
    direction: str = "forward",
    activations: Sequence[str] | None = None,
    sequence_lens: np.ndarray | None = None,
    clip: float | None = None,
    *,
    activation_alpha: Sequence[float] | None = None,
    activation_beta: Sequence[float] | None = None,
    layout: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """ONNX ``RNN``: ``H_t = f(X_t W^T + H_{t-1} R^T + Wb + Rb)``.

    Args:
        X: ``[seq, batch, input]`` (``[batch, seq, input]`` if layout=1).
        W: ``[dirs, hidden, input]``.
        R: ``[dirs, hidden, hidden]``.
        B: ``[dirs, 2*hidden]`` = ``[Wb | Rb]``; zeros if None.
        initial_h: ``[dirs, batch, hidden]``; zeros if None.
        direction: "forward", "reverse" or "bidirectional".
        activations: one name per direction (default "Tanh").
        sequence_lens: ``[batch]`` valid lengths; full length if None.
        clip: optional threshold applied to the activation input.
        activation_alpha, activation_beta: parameters of the activations.
        layout: 0 (sequence first) or 1 (batch first).

    Returns:
        ``(Y, Y_h)``: ``[seq, dirs, batch, hidden]`` and ``[dirs, batch, hidden]``.
    """
    _check_directions(W, direction)
    w, r, wb, rb, hidden = _split_weights(W, R, B, num_gates=1)
    acts = _resolve_activations(
        activations, ["Tanh"], w.shape[0], activation_alpha, activation_beta
    )
    clipped = _clipper(clip)

    def make_step(d: int) -> StepFn:
        (f,) = acts[d]
        bias = wb[d] + rb[d]  # [hidden]

        def step(x_t: np.ndarray, states: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
            (h,) = states  # [batch, hidden]
            return (f(clipped(x_t @ w[d].T + h @ r[d].T + bias)),)

        return step

    y, y_h = _run_recurrence(X, [initial_h], hidden, direction, sequence_lens, layout, make_step)
    return y, y_h


def gru(
    X: np.ndarray,
    W: np.ndarray,
    R: np.ndarray,
    B: np.ndarray | None = None,
    initial_h: np.ndarray | None = None,
    direction: str = "forward",
    linear_before_reset: int = 0,
    sequence_lens: np.ndarray | None = None,
    activations: Sequence[str] | None = None,
    clip: float | None = None,
    *,
    activation_alpha: Sequence[float] | None = None,
    activation_beta: Sequence[float] | None = None,
    layout: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """ONNX ``GRU`` with gate order z (update), r (reset), h (hidden).

    ``z = f(X Wz^T + H Rz^T + Wbz + Rbz)``, ``r = f(X Wr^T + H Rr^T + Wbr + Rbr)``,
    ``h~ = g(X Wh^T + (r*H) Rh^T + Rbh + Wbh)`` or, with linear_before_reset,
    ``h~ = g(X Wh^T + r*(H Rh^T + Rbh) + Wbh)``; ``H' = (1-z)*h~ + z*H``.

    Args:
        X: ``[seq, batch, input]`` (``[batch, seq, input]`` if layout=1).
        W: ``[dirs, 3*hidden, input]``.
        R: ``[dirs, 3*hidden, hidden]``.
        B: ``[dirs, 6*hidden]`` = ``[Wb | Rb]``; zeros if None.
        initial_h: ``[dirs, batch, hidden]``; zeros if None.
        direction: "forward", "reverse" or "bidirectional".
        linear_before_reset: apply the reset gate after the R_h product if 1.
        sequence_lens: ``[batch]`` valid lengths; full length if None.
        activations: (f, g) per direction (default Sigmoid, Tanh).
        clip: optional threshold applied to every activation input.
        activation_alpha, activation_beta: parameters of the activations.
        layout: 0 (sequence first) or 1 (batch first).

    Returns:
        ``(Y, Y_h)``: ``[seq, dirs, batch, hidden]`` and ``[dirs, batch, hidden]``.
    """
    _check_directions(W, direction)
    w, r, wb, rb, hidden = _split_weights(W, R, B, num_gates=3)
    acts = _resolve_activations(
        activations, ["Sigmoid", "Tanh"], w.shape[0], activation_alpha, activation_beta
    )
    clipped = _clipper(clip)

    def make_step(d: int) -> StepFn:
        f, g = acts[d]
        w_z, w_r, w_h = np.split(w[d], 3)  # each [hidden, input]
        r_z, r_r, r_h = np.split(r[d], 3)  # each [hidden, hidden]
        wb_z, wb_r, wb_h = np.split(wb[d], 3)  # each [hidden]
        rb_z, rb_r, rb_h = np.split(rb[d], 3)  # each [hidden]

        def step(x_t: np.ndarray, states: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
            (h,) = states  # [batch, hidden]
            z = f(clipped(x_t @ w_z.T + h @ r_z.T + wb_z + rb_z))  # [batch, hidden]
            rg = f(clipped(x_t @ w_r.T + h @ r_r.T + wb_r + rb_r))  # [batch, hidden]
            if linear_before_reset:
                # The reset gate scales the recurrent product including its bias.
                pre = x_t @ w_h.T + rg * (h @ r_h.T + rb_h) + wb_h
            else:
                # The reset gate scales the state before it meets R_h.
                pre = x_t @ w_h.T + (rg * h) @ r_h.T + rb_h + wb_h
            h_tilde = g(clipped(pre))  # [batch, hidden]
            return ((1.0 - z) * h_tilde + z * h,)

        return step

    y, y_h = _run_recurrence(X, [initial_h], hidden, direction, sequence_lens, layout, make_step)
    return y, y_h


def lstm(
    X: np.ndarray,
    W: np.ndarray,
    R: np.ndarray,
    B: np.ndarray | None = None,
    initial_h: np.ndarray | None = None,
    initial_c: np.ndarray | None = None,
    P: np.ndarray | None = None,
    direction: str = "forward",
    sequence_lens: np.ndarray | None = None,
    input_forget: int = 0,
    activations: Sequence[str] | None = None,
    clip: float | None = None,
    *,
    activation_alpha: Sequence[float] | None = None,
    activation_beta: Sequence[float] | None = None,
    layout: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ONNX ``LSTM`` with gate order i, o, f, c and peepholes P in order i, o, f.

    ``i = f(X Wi^T + H Ri^T + Pi*C + Wbi + Rbi)``,
    ``f = f(X Wf^T + H Rf^T + Pf*C + Wbf + Rbf)`` (``1 - i`` if input_forget),
    ``c~ = g(X Wc^T + H Rc^T + Wbc + Rbc)``, ``C' = f*C + i*c~``,
    ``o = f(X Wo^T + H Ro^T + Po*C' + Wbo + Rbo)``, ``H' = o*h(C')``.

    Args:
        X: ``[seq, batch, input]`` (``[batch, seq, input]`` if layout=1).
        W: ``[dirs, 4*hidden, input]``.
        R: ``[dirs, 4*hidden, hidden]``.
        B: ``[dirs, 8*hidden]`` = ``[Wb | Rb]``; zeros if None.
        initial_h, initial_c: ``[dirs, batch, hidden]``; zeros if None.
        P: ``[dirs, 3*hidden]`` peephole weights; zeros if None.
        direction: "forward", "reverse" or "bidirectional".
        sequence_lens: ``[batch]`` valid lengths; full length if None.
        input_forget: couple the forget gate to the input gate if 1.
        activations: (f, g, h) per direction (default Sigmoid, Tanh, Tanh).
        clip: optional threshold applied to every activation input.
        activation_alpha, activation_beta: parameters of the activations.
        layout: 0 (sequence first) or 1 (batch first).

    Returns:
        ``(Y, Y_h, Y_c)``: ``[seq, dirs, batch, hidden]`` and twice
        ``[dirs, batch, hidden]``.
    """
    _check_directions(W, direction)
    w, r, wb, rb, hidden = _split_weights(W, R, B, num_gates=4)
    num_directions = w.shape[0]
    # Absent peepholes are zeros.  p: [dirs, 3*hidden]
    p = np.zeros((num_directions, 3 * hidden)) if P is None else np.asarray(P, np.float64)
    acts = _resolve_activations(
        activations,
        ["Sigmoid", "Tanh", "Tanh"],
        num_directions,
        activation_alpha,
        activation_beta,
    )
    clipped = _clipper(clip)

    def make_step(d: int) -> StepFn:
        f, g, h_act = acts[d]
        # All four gates in one product; columns are [i | o | f | c].
        w_t = w[d].T  # [input, 4*hidden]
        r_t = r[d].T  # [hidden, 4*hidden]
        bias = wb[d] + rb[d]  # [4*hidden]
        p_i, p_o, p_f = np.split(p[d], 3)  # each [hidden]

        def step(x_t: np.ndarray, states: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
            h, c = states  # each [batch, hidden]
            gates = x_t @ w_t + h @ r_t + bias  # [batch, 4*hidden]
            g_i, g_o, g_f, g_c = np.split(gates, 4, axis=1)  # each [batch, hidden]
            i = f(clipped(g_i + p_i * c))
            # Coupled gates (input_forget): whatever is let in is forgotten,
            # so the forget gate is 1 - i and Pf is unused.
            forget = 1.0 - i if input_forget else f(clipped(g_f + p_f * c))
            c_new = forget * c + i * g(clipped(g_c))
            # The output gate peeks at the *new* cell state.
            o = f(clipped(g_o + p_o * c_new))
            return (o * h_act(c_new), c_new)

        return step

    y, y_h, y_c = _run_recurrence(
        X,
        [initial_h, initial_c],
        hidden,
        direction,
        sequence_lens,
        layout,
        make_step,
    )
    return y, y_h, y_c
