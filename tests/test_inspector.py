"""inspect() on models the course never built: nested, time-major, bidirectional and packed LSTMs,
nn.MultiheadAttention used three ways, a tiny random BERT; long inputs get a window; clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from course_utils.inspector import Inspector, NothingToInspectError, inspect
from course_utils.tracing import trace_lstm

PNG = b"\x89PNG"


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny recurrent models: much faster on one thread
    yield
    torch.set_num_threads(threads)


class Nested(nn.Module):
    """A time-major bidirectional stacked LSTM two levels down, then attention without weights."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Sequential(nn.Linear(4, 8), nn.Tanh())
        self.enc = nn.ModuleDict({"rnn": nn.LSTM(8, 6, num_layers=2, bidirectional=True)})
        self.att = nn.MultiheadAttention(12, 3)  # time-major too
        self.head = nn.Linear(12, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x (T, B, 4)
        h, _ = self.enc["rnn"](self.embed(x))  # (T, B, 12)
        a, w = self.att(h, h, h, need_weights=False)
        assert w is None  # the caller still gets what it asked for
        return self.head(a[-1])


class Packed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(3, 5, batch_first=True)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        _, (h, _) = self.lstm(packed)
        return h[-1]


class ThreeWays(nn.Module):
    """One attention called with default (averaged) weights, one per head, one without weights."""

    def __init__(self) -> None:
        super().__init__()
        self.averaged = nn.MultiheadAttention(8, 2, batch_first=True)
        self.per_head = nn.MultiheadAttention(8, 4, batch_first=True)
        self.silent = nn.MultiheadAttention(8, 2, batch_first=True)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        a, w = self.averaged(x, x, x, key_padding_mask=mask)
        b, w4 = self.per_head(a, a, a, average_attn_weights=False)
        c, _ = self.silent(b, b, b, need_weights=False)
        self.returned = (w, w4)
        return c


def _views_render_and_every_control_changes_the_figure(ins: Inspector) -> None:
    for name, view in ins.views.items():
        first = view.static_png()
        assert first.startswith(PNG), name
        assert view.figure.axes, f"{name}: nothing drawn"
        for key, control in view.controls.items():
            if control.layout.display == "none":
                continue
            before = view.static_png()
            if hasattr(control, "options"):
                values = [o[1] if isinstance(o, tuple) else o for o in control.options]
                control.value = next(v for v in values if v != control.value)
            elif isinstance(control.value, bool):
                control.value = not control.value
            else:
                control.value = control.max if control.value != control.max else control.min
            assert view.error.value == "", f"{name}.{key}: {view.error.value}"
            assert view.static_png() != before, f"{name}: moving {key!r} did not change the figure"


def test_nested_time_major_bidirectional_lstm_and_attention_without_weights():
    torch.manual_seed(0)
    model = Nested().train()
    x = torch.randn(9, 3, 4)  # (T, B, features): time-major
    model.eval()
    with torch.no_grad():
        expected = model(x)
    model.train()
    ins = inspect(model, x)
    assert set(ins.views) == {"enc.rnn", "enc.rnn (patterns)", "att"}
    assert ins.kinds == {"enc.rnn": "lstm", "enc.rnn (patterns)": "pattern", "att": "attention"}
    assert model.training and model.enc["rnn"].training  # its mode is given back
    torch.testing.assert_close(ins.output, expected)  # the model ran as without inspect (eval)
    trace = ins.records["enc.rnn"]
    assert trace.h.shape == (2, 2, 3, 9, 6)  # (layers, directions, batch, steps, units)
    # the views see the real per-step states: the trace rebuilds the module's own output
    with torch.no_grad():
        out, _ = model.enc["rnn"].eval()(model.embed(x))
    torch.testing.assert_close(trace.output(), out.transpose(0, 1))
    weights = ins.records["att"].weights
    assert weights.shape == (3, 3, 9, 9)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, 3, 9))
    # state view: layer and direction sliders are real (2 layers, 2 directions), not hidden
    lstm_view = ins.views["enc.rnn"]
    assert lstm_view.controls["direction"].layout.display is None
    _views_render_and_every_control_changes_the_figure(ins)


def test_packed_batch_first_lstm_keeps_each_sequence_length():
    torch.manual_seed(1)
    model = Packed()
    x, lengths = torch.randn(4, 7, 3), torch.tensor([7, 2, 5, 3])
    ins = inspect(model, x, lengths)
    assert list(ins.views) == ["lstm", "lstm (patterns)"]
    assert ins.records["lstm"].lengths.tolist() == [7, 2, 5, 3]
    reference = trace_lstm(model.lstm, x[1:2, :2])  # example 1 alone, without padding
    torch.testing.assert_close(ins.records["lstm"].h[0, 0, 1, :2], reference.h[0, 0, 0])
    view = ins.views["lstm"]
    # one layer, one direction: those sliders would do nothing and are hidden
    assert view.controls["layer"].layout.display == "none"
    assert view.controls["direction"].layout.display == "none"
    _views_render_and_every_control_changes_the_figure(ins)


def test_attention_used_three_ways_gives_per_head_weights_and_the_callers_their_own():
    torch.manual_seed(2)
    model = ThreeWays().eval()
    x = torch.randn(2, 6, 8)
    mask = torch.tensor([[False] * 6, [False] * 4 + [True] * 2])
    ins = inspect(model, x, mask)
    assert set(ins.views) == {"averaged", "per_head", "silent"}
    assert [ins.records[k].weights.shape[1] for k in ("averaged", "per_head", "silent")] == [
        2,
        4,
        2,
    ]
    w, w4 = model.returned
    assert w.shape == (2, 6, 6) and w4.shape == (2, 4, 6, 6)  # callers got what they asked for
    # the per-head record agrees with what the module itself returned (averaged by PyTorch)
    torch.testing.assert_close(ins.records["averaged"].weights.mean(1), w)
    torch.testing.assert_close(ins.records["per_head"].weights, w4)
    assert float(ins.records["averaged"].weights[1, :, :, 4:].abs().max()) == 0.0  # padding masked
    _views_render_and_every_control_changes_the_figure(ins)


def test_transformer_encoder_and_a_bare_attention_module():
    torch.manual_seed(3)
    layer = nn.TransformerEncoderLayer(12, 4, dim_feedforward=16, batch_first=True)
    encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False).eval()
    ins = inspect(encoder, torch.randn(2, 5, 12), tokens=list("abcde"))
    assert set(ins.views) == {"layers.0.self_attn", "layers.1.self_attn"}
    assert ins.records["layers.1.self_attn"].weights.shape == (2, 4, 5, 5)
    _views_render_and_every_control_changes_the_figure(ins)
    bare = nn.MultiheadAttention(6, 2).eval()
    q = torch.randn(4, 1, 6)
    ins = inspect(bare, q, q, q)
    assert list(ins.views) == [""] and ins.kinds[""] == "attention"  # "" = the model itself


def _tiny_bert(**kwargs):
    from transformers import BertConfig, BertModel

    torch.manual_seed(4)
    config = BertConfig(
        vocab_size=40,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=32,
        max_position_embeddings=520,
        **kwargs,
    )
    return BertModel(config).eval()


class WithBert(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.bert = _tiny_bert()
        self.lstm = nn.LSTM(16, 4, batch_first=True)

    def forward(self, input_ids, attention_mask):
        states = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.lstm(states)[0][:, -1]


def test_tiny_random_bert_attention_by_layer_and_head_matches_output_attentions():
    bert = _tiny_bert()  # default attention implementation (sdpa): no weights unless switched
    ids = torch.randint(5, 40, (2, 7))
    mask = torch.tensor([[1] * 7, [1] * 5 + [0] * 2])
    previous = bert.config._attn_implementation
    ins = inspect(bert, ids, attention_mask=mask, tokens=[f"t{k}" for k in range(7)])
    assert list(ins.views) == [""] and ins.kinds[""] == "transformer"
    assert bert.config._attn_implementation == previous  # switched back after the run
    weights = ins.records[""].weights
    assert weights.shape == (2, 2, 4, 7, 7)  # (N, layers, heads, T, T)
    bert.set_attn_implementation("eager")
    with torch.no_grad():
        reference = bert(ids, attention_mask=mask, output_attentions=True).attentions
    torch.testing.assert_close(weights, torch.stack(reference, dim=1))
    view = ins.views[""]
    assert set(view.controls) == {"example", "layer", "head", "view"}  # no tokenizer: no [CLS]
    _views_render_and_every_control_changes_the_figure(ins)


def test_bert_inside_a_model_with_a_tokenizer_and_long_inputs_get_a_window():
    model = WithBert().eval()
    tokens = ["[CLS]"] + [f"w{k}" for k in range(510)] + ["[SEP]"]

    class Tok:  # the two things inspect reads from a tokenizer
        all_special_tokens = ["[CLS]", "[SEP]", "[PAD]"]

        def convert_ids_to_tokens(self, ids):
            return tokens[: len(ids)]

    ids = torch.randint(5, 40, (1, 512))
    ins = inspect(model, ids, torch.ones(1, 512, dtype=torch.long), tokenizer=Tok())
    assert ins.kinds == {"lstm": "lstm", "lstm (patterns)": "pattern", "bert": "transformer"}
    assert "512 tokens: tokens 0-63 shown" in ins.notes["bert"]
    assert "T = 512 steps: steps 0-63 shown" in ins.notes["lstm"]
    assert ins.records["bert"].weights.shape[-1] == 512 and ins.records["lstm"].seq_len == 512
    assert "hide_special" in ins.views["bert"].controls
    for view in ins.views.values():
        view.redraw_cpu_seconds.clear()
    _views_render_and_every_control_changes_the_figure(ins)
    ins.picker.value = "lstm"
    assert ins.holder.children == (ins.views["lstm"],)
    assert "steps 0-63" in ins.note.value  # the window is said above the view


def test_long_lstm_input_window_start_and_a_2000_step_attention():
    torch.manual_seed(5)
    model = Nested().eval()
    ins = inspect(model, torch.randn(2000, 1, 4), window_start=1000, max_steps=40)
    assert "steps 1000-1039 shown" in ins.notes["enc.rnn"]
    assert "2000 queries x 2000 keys: positions 1000-1039 shown" in ins.notes["att"]
    view = ins.views["enc.rnn"]
    assert view.controls["step"].max == 39
    # the window's step 0 is the whole trace's step 1000 (the recorded data stay whole)
    assert ins.records["enc.rnn"].seq_len == 2000
    shown = view.figure.axes[1].lines[0].get_ydata()  # h of layer 1, unit 0, over the window
    expected = ins.records["enc.rnn"].h[1, 0, 0, 1000:1040, 0].numpy()
    np.testing.assert_allclose(shown, expected, rtol=1e-6)
    _views_render_and_every_control_changes_the_figure(ins)


def test_inspector_widget_static_view_summary_and_save(tmp_path):
    torch.manual_seed(6)
    ins = inspect(Nested().eval(), torch.randn(5, 2, 4))
    data, metadata = ins._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in data and "image/png" in data
    assert "enc.rnn" in data["text/plain"] and metadata["image/png"]["width"] > 0
    assert ins.picker.layout.display is None  # two components: the picker is shown
    ins.save(str(tmp_path / "v.png"))
    ins.views["att"].save(str(tmp_path / "a.svg"))
    assert (tmp_path / "v.png").read_bytes().startswith(PNG)
    assert (tmp_path / "a.svg").stat().st_size > 1000


def test_nothing_to_inspect_names_what_was_looked_for_and_what_the_model_holds():
    model = nn.Sequential(nn.Linear(3, 4), nn.Conv1d(4, 4, 1), nn.Linear(4, 1))
    with pytest.raises(NothingToInspectError) as err:
        inspect(model, torch.randn(2, 3))
    message = str(err.value)
    assert "nn.LSTM" in message and "nn.MultiheadAttention" in message and "BERT" in message
    assert "expose_attention" in message  # how to make hand-written attention visible
    assert "Linear x2" in message and "Conv1d x1" in message
    with pytest.raises(TypeError, match="nn.Module"):
        inspect(lambda x: x, torch.randn(2))


def test_a_component_that_the_forward_pass_never_calls_is_left_out():
    class Unused(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(3, 3)
            self.spare = nn.LSTM(3, 3)

        def forward(self, x):
            return self.lstm(x)[0]

    ins = inspect(Unused(), torch.randn(4, 1, 3))
    assert list(ins.views) == ["lstm", "lstm (patterns)"]

    class Skips(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(3, 3)

        def forward(self, x):
            return x

    with pytest.raises(NothingToInspectError, match="called none of them"):
        inspect(Skips(), torch.randn(4, 1, 3))


def test_state_view_redraw_is_cheap_on_long_inputs():
    ins = inspect(Packed(), torch.randn(2, 2000, 3), torch.tensor([2000, 1500]))
    view = ins.views["lstm"]
    view.redraw_cpu_seconds.clear()
    for step in range(0, 60, 6):
        view.controls["step"].value = step
    assert np.median(view.redraw_cpu_seconds) < 1.0  # generous: timings are not asserted tightly


@pytest.mark.filterwarnings("ignore:LSTM with projections")
def test_an_lstm_with_proj_size_is_traced_with_its_projected_h_and_its_cells():
    class Mixed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.projected = nn.LSTM(3, 6, proj_size=2)
            self.plain = nn.LSTM(2, 4)

        def forward(self, x):
            return self.plain(self.projected(x)[0])[0]

    x = torch.randn(5, 1, 3)
    ins = inspect(Mixed(), x)
    assert {"projected", "plain"} <= set(ins.views)
    trace = ins.records["projected"]
    assert trace.h.shape[-1] == 2 and trace.c.shape[-1] == 6 and trace.proj_size == 2
    _views_render_and_every_control_changes_the_figure(ins)


def test_an_lstm_applied_twice_to_unrelated_inputs_gets_one_view_per_call():
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(3, 4, batch_first=True)

        def forward(self, a, b):
            return self.lstm(a)[0][:, -1] + self.lstm(b)[0][:, -1]

    a, b = torch.randn(2, 5, 3), torch.randn(2, 7, 3)
    ins = inspect(Twice(), a, b)
    assert ins.kinds["lstm (call 0)"] == "lstm" and ins.kinds["lstm (call 1)"] == "lstm"
    assert ins.records["lstm (call 0)"].seq_len == 5 and ins.records["lstm (call 1)"].seq_len == 7
    assert "call 1 of 2" in ins.notes["lstm (call 1)"]


def test_a_subclassed_lstm_with_its_own_forward_is_left_out_with_a_note_and_the_rest_shown():
    class Peephole(nn.LSTM):  # its own forward: tracing would run nn.LSTM's instead
        def forward(self, x, hx=None):
            out, state = super().forward(x, hx)
            return out * 0.5, state

    class Both(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.custom = Peephole(3, 4, batch_first=True)
            self.plain = nn.LSTM(4, 2, batch_first=True)

        def forward(self, x):
            return self.plain(self.custom(x)[0])[0]

    ins = inspect(Both(), torch.randn(2, 5, 3))
    assert "plain" in ins.views and "custom" not in ins.views
    assert "custom" in ins.skipped and "own forward" in ins.skipped["custom"]
    with pytest.raises(NothingToInspectError, match="own forward"):
        inspect(Peephole(3, 4), torch.randn(5, 1, 3))


def test_seq2seq_labels_per_component_and_numbers_where_labels_do_not_fit():
    from course_utils.seq2seq import Seq2SeqAttention

    torch.manual_seed(0)
    model = Seq2SeqAttention(target_kind="symbols", vocab_size=6, hidden_size=8, num_layers=1)
    source = torch.randint(1, 6, (2, 5))  # 5 source steps
    decoder_inputs = torch.randint(1, 6, (2, 7))  # 7 decoder steps
    src, tgt = list("abcde"), [f"y{k}" for k in range(7)]
    ins = inspect(model, source, decoder_inputs, tokens=src)  # one list: fits the 5-step views
    assert "numbered instead" in ins.notes["decoder"]  # 7 decoder steps, 5 labels
    assert "numbered instead" not in ins.notes.get("encoder", "")
    ins = inspect(
        model,
        source,
        decoder_inputs,
        tokens={"encoder": src, "decoder": tgt, "attention": src},
        query_tokens={"attention": tgt},
    )
    assert not any("numbered" in note for note in ins.notes.values())
    view = ins.views["attention"]
    assert view.controls["query"].max == 6  # every decoder step can be picked
    _views_render_and_every_control_changes_the_figure(ins)
