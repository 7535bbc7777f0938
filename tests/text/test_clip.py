"""text/clip.py: OpenAI CLIP's tokeniser rules and upstream MDM's text features, through open_clip.

Runs on every CI: open_clip only, random weights (no download, no upstream)."""

from __future__ import annotations

import hashlib
import logging

import pytest
import torch

from mdm_kinemic.text import clip as text_clip
from mdm_kinemic.text.clip import (
    EOT_TOKEN,
    SOT_TOKEN,
    CLIPWeightsError,
    CLIPWeightsNotFoundError,
)


@pytest.fixture(scope="module")
def vocab() -> dict[str, int]:
    """OpenAI's BPE vocabulary as shipped with open_clip (word-final pieces end in </w>)."""
    from open_clip.tokenizer import SimpleTokenizer

    return SimpleTokenizer().encoder


@pytest.fixture(scope="module")
def random_clip() -> torch.nn.Module:
    return text_clip.load_clip("random")


def _words(vocab, *words) -> list[int]:
    return [vocab[w + "</w>"] for w in words]


# ---------------------------------------------------------------- tokenisation, OpenAI's rules


def test_tokenize_layout_matches_openai(vocab):
    tokens = text_clip.tokenize(["a person walks forward."])
    expected = [SOT_TOKEN, *_words(vocab, "a", "person", "walks", "forward", "."), EOT_TOKEN]
    assert tokens.shape == (1, 77)
    assert tokens.dtype == torch.int32  # OpenAI returns torch.int for torch >= 1.8
    assert tokens[0, : len(expected)].tolist() == expected
    assert tokens[0, len(expected) :].eq(0).all()


@pytest.mark.parametrize(
    ("messy", "clean"),
    [
        ("  A   PERSON\tWalks\n ", "a person walks"),  # whitespace runs, case
        ("rock &amp;amp; roll", "rock & roll"),  # html unescaped twice
        ("cafÃ©", "café"),  # ftfy repairs mojibake
    ],
)
def test_tokenize_cleans_text_like_openai(messy, clean):
    assert torch.equal(text_clip.tokenize(messy), text_clip.tokenize(clean))


def test_special_tokens_written_in_text_become_special_ids(vocab):
    # OpenAI's pattern matches <|endoftext|> literally; open_clip's tokenizer would split it into
    # BPE pieces, which moves the argmax that CLIP pools the text feature from
    tokens = text_clip.tokenize("hello <|endoftext|> world")[0]
    expected = [SOT_TOKEN, *_words(vocab, "hello"), EOT_TOKEN, *_words(vocab, "world"), EOT_TOKEN]
    assert tokens[: len(expected)].tolist() == expected


def test_string_input_gives_one_row():
    assert text_clip.tokenize("a person jumps.", context_length=22).shape == (1, 22)


def test_truncate_keeps_end_token_in_last_position(vocab):
    caption = " ".join(["walk"] * 30)
    tokens = text_clip.tokenize(caption, context_length=22, truncate=True)[0]
    assert tokens.tolist() == [SOT_TOKEN, *([vocab["walk</w>"]] * 20), EOT_TOKEN]


def test_too_long_without_truncate_raises_openai_error():
    caption = " ".join(["walk"] * 21)  # 21 words + 2 special tokens = 23 > 22
    with pytest.raises(RuntimeError, match="too long for context length 22"):
        text_clip.tokenize(caption, context_length=22)


def test_exact_fit_is_not_truncated(vocab):
    caption = " ".join(["walk"] * 20)
    tokens = text_clip.tokenize(caption, context_length=22)[0]
    assert tokens.tolist() == [SOT_TOKEN, *([vocab["walk</w>"]] * 20), EOT_TOKEN]


@pytest.mark.parametrize(
    "caption",
    ["a person walks forward and then turns around.", "someone kicks with the right leg!", "it's 3 o'clock"],
)
def test_ordinary_captions_match_open_clip_tokenizer(caption):
    import open_clip

    assert torch.equal(text_clip.tokenize(caption).long(), open_clip.tokenize(caption))


# ---------------------------------------------------------------- text features


def test_encode_text_shape_and_dtype(random_clip):
    features = text_clip.encode_text(random_clip, ["a person walks.", "a person sits down."], context_length=22)
    assert features.shape == (2, 512)
    assert features.dtype == torch.float32
    assert not features.requires_grad
    assert not torch.allclose(features[0], features[1])


def test_humanml_context_is_22_tokens_zero_padded_to_77(random_clip):
    texts = ["a person walks forward.", " ".join(["run"] * 40)]
    tokens = text_clip.tokenize(texts, context_length=22, truncate=True)
    padded = torch.cat([tokens, torch.zeros(2, 55, dtype=tokens.dtype)], dim=1)
    with torch.no_grad():
        expected = random_clip.encode_text(padded).float()
    assert torch.equal(text_clip.encode_text(random_clip, texts, context_length=22), expected)


def test_truncated_caption_equals_its_first_20_words(random_clip):
    # every word is one BPE token, so truncation at 22 keeps exactly the first 20 words
    words = ["walk", "run", "jump", "turn", "sit", "stand"] * 6
    long = text_clip.encode_text(random_clip, [" ".join(words)], context_length=22)
    short = text_clip.encode_text(random_clip, [" ".join(words[:20])], context_length=None)
    torch.testing.assert_close(long, short, rtol=0, atol=1e-5)


def test_feature_is_read_at_the_end_token(random_clip):
    # the causal text transformer pools at argmax(token ids) = the end token: tokens after it,
    # zeros or anything else below 49407, cannot change the feature
    tokens = text_clip.tokenize(["a person waves."], context_length=77)
    garbage = tokens.clone()
    end = int(tokens[0].argmax())
    garbage[0, end + 1 :] = torch.randint(1, 49000, (77 - end - 1,), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(random_clip.encode_text(garbage), random_clip.encode_text(tokens), rtol=0, atol=1e-5)


@pytest.mark.parametrize("context_length", [1, 78])
def test_encode_text_rejects_bad_context(random_clip, context_length):
    with pytest.raises(ValueError, match="context_length"):
        text_clip.encode_text(random_clip, ["a"], context_length=context_length)


def test_random_weights_are_deterministic_and_warn_every_time(random_clip, caplog):
    with caplog.at_level(logging.WARNING, logger="mdm_kinemic.text.clip"):
        again = text_clip.load_clip("random")
        text_clip.load_clip("random")
    assert sum("RANDOM" in r.getMessage() for r in caplog.records) == 2
    texts = ["a person claps."]
    assert torch.equal(text_clip.encode_text(again, texts), text_clip.encode_text(random_clip, texts))


def test_random_weights_leave_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    text_clip.load_clip("random")
    assert torch.equal(torch.rand(3), expected)


def test_model_is_frozen_eval(random_clip):
    assert not random_clip.training
    assert not any(p.requires_grad for p in random_clip.parameters())


def test_fp16_matches_openai_convert_weights(random_clip):
    half = text_clip.load_clip("random", precision="fp16")
    # OpenAI's convert_weights: linear and attention weights and the projection go to fp16;
    # embeddings and LayerNorms stay fp32
    assert half.transformer.resblocks[0].mlp.c_fc.weight.dtype == torch.float16
    assert half.transformer.resblocks[0].attn.in_proj_weight.dtype == torch.float16
    assert half.text_projection.dtype == torch.float16
    assert half.token_embedding.weight.dtype == torch.float32
    assert half.ln_final.weight.dtype == torch.float32
    texts = ["a person walks forward."]
    full = text_clip.encode_text(random_clip, texts, context_length=22)
    reduced = text_clip.encode_text(half, texts, context_length=22)
    assert reduced.dtype == torch.float32
    torch.testing.assert_close(reduced, full, rtol=0, atol=5e-2)


def test_unknown_precision_is_rejected():
    with pytest.raises(ValueError, match="precision"):
        text_clip.load_clip("random", precision="bf16")


# ---------------------------------------------------------------- where the weights come from


@pytest.fixture
def empty_caches(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.delenv(text_clip.CLIP_WEIGHTS_ENV, raising=False)
    return tmp_path


def test_no_weights_anywhere_names_every_place_tried(empty_caches):
    with pytest.raises(CLIPWeightsNotFoundError) as err:
        text_clip.resolve_clip_weights(None)
    message = str(err.value)
    assert str(empty_caches / "home" / ".cache" / "clip" / "ViT-B-32.pt") in message
    assert text_clip.CLIP_WEIGHTS_ENV in message
    assert "--clip_weights random" in message


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(CLIPWeightsNotFoundError, match=str(tmp_path / "nope.pt")):
        text_clip.resolve_clip_weights(tmp_path / "nope.pt")


def test_env_variable_is_used_and_named(empty_caches, monkeypatch):
    monkeypatch.setenv(text_clip.CLIP_WEIGHTS_ENV, "random")
    assert text_clip.resolve_clip_weights(None) == "random"
    monkeypatch.setenv(text_clip.CLIP_WEIGHTS_ENV, str(empty_caches / "absent.pt"))
    with pytest.raises(CLIPWeightsNotFoundError, match=text_clip.CLIP_WEIGHTS_ENV):
        text_clip.resolve_clip_weights(None)


def test_openai_cache_file_is_found(empty_caches):
    cached = empty_caches / "home" / ".cache" / "clip" / "ViT-B-32.pt"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"")
    assert text_clip.resolve_clip_weights(None) == cached


def test_relative_path_is_made_absolute(tmp_path, monkeypatch):
    (tmp_path / "w.pt").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    assert text_clip.resolve_clip_weights("w.pt") == tmp_path / "w.pt"


def test_weights_of_another_model_are_rejected(tmp_path):
    # the layout of a ViT-L/14 (patch 14, width 1024 / 768): not what MDM's embed_text expects
    other = {
        "visual.conv1.weight": torch.zeros(1024, 3, 14, 14),
        "positional_embedding": torch.zeros(77, 768),
        "ln_final.weight": torch.zeros(768),
        "text_projection": torch.zeros(768, 768),
    }
    path = tmp_path / "ViT-L-14.pt"
    torch.save(other, path)
    with pytest.raises(CLIPWeightsError, match="not OpenAI's CLIP ViT-B/32") as err:
        text_clip.load_clip(path)
    assert str(path) in str(err.value)
    assert "text_projection has shape (768, 768)" in str(err.value)


def test_truncated_weights_are_unreadable(tmp_path):
    path = tmp_path / "ViT-B-32.pt"
    torch.save({"x": torch.zeros(1000)}, path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CLIPWeightsError, match="truncated"):
        text_clip.load_clip(path)


def test_torchscript_archives_are_read(tmp_path, monkeypatch):
    # OpenAI's released ViT-B-32.pt is a TorchScript archive; its state dict is what is loaded,
    # once its digest is OpenAI's (here the test archive's stands in)
    module = torch.jit.script(torch.nn.Linear(3, 2))
    path = tmp_path / "scripted.pt"
    module.save(str(path))
    monkeypatch.setattr(text_clip, "OPENAI_VIT_B32_SHA256", hashlib.sha256(path.read_bytes()).hexdigest())
    weights = text_clip._read_state_dict(path)
    assert torch.equal(weights["weight"], module.weight)


@pytest.mark.slow  # writes and reads a 300 MB file
def test_state_dict_file_round_trip(random_clip, tmp_path):
    # OpenAI's state dicts hold most weights in fp16 and the hyper-parameters as entries
    state = {k: (v.half() if v.dim() > 1 else v) for k, v in random_clip.state_dict().items()}
    state["context_length"] = torch.tensor(77)
    path = tmp_path / "ViT-B-32.pt"
    torch.save(state, path)
    loaded = text_clip.load_clip(path)
    for key in ("text_projection", "transformer.resblocks.3.mlp.c_fc.weight", "ln_final.weight"):
        assert torch.equal(loaded.state_dict()[key], state[key].float())
    texts = ["a person walks forward."]
    torch.testing.assert_close(
        text_clip.encode_text(loaded, texts), text_clip.encode_text(random_clip, texts), rtol=0, atol=5e-2
    )


def test_matches_openai_clip_when_installed(tmp_path):
    """Where OpenAI's clip package is installed: same tokens, and upstream's fp16 text features
    bit for bit (measured with github openai/CLIP d05afc4: tokens equal on 430 captions, fp16
    features exact, fp32 within 4e-6)."""
    import sys

    openai_clip = sys.modules.get("clip")
    if openai_clip is None:
        openai_clip = pytest.importorskip("clip")
    if getattr(openai_clip, "mdm_kinemic_stand_in", False) or not hasattr(openai_clip, "model"):
        pytest.skip("OpenAI's clip package is not installed")
    from clip.model import build_model, convert_weights

    texts = ["a person walks forward.", "Hello <|endoftext|> world", " ".join(["run"] * 30), "rock &amp; roll"]
    for length in (22, 77):
        assert torch.equal(openai_clip.tokenize(texts, length, True), text_clip.tokenize(texts, length, True))
    hyper = {"input_resolution": torch.tensor(224), "context_length": torch.tensor(77), "vocab_size": torch.tensor(49408)}
    # build_model returns OpenAI's partially fp16 network, as OpenAI's released file holds it
    reference = build_model({**text_clip._random_state_dict(), **hyper}).eval()
    torch.save(reference.state_dict(), tmp_path / "ViT-B-32.pt")
    reference.float()  # clip.load on CPU
    convert_weights(reference)  # upstream's load_and_freeze_clip
    tokens = torch.nn.functional.pad(openai_clip.tokenize(texts, 22, True), (0, 55))
    with torch.no_grad():
        expected = reference.encode_text(tokens).float()
    ours = text_clip.load_clip(tmp_path / "ViT-B-32.pt", precision="fp16")
    assert torch.equal(text_clip.encode_text(ours, texts, context_length=22), expected)
