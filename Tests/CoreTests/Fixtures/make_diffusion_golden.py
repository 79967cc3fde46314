# Golden ε̂ of the tiny diffusion model from an independent PyTorch 2.13 implementation (float64).
# Reads diffusion_tiny.safetensors (written by Swift, see DiffusionGoldenTests.swift), rebuilds the
# architecture from its config metadata with parameter names identical to Swift's, loads the weights
# strictly, and writes diffusion_golden.json.  Usage: python3 make_diffusion_golden.py
import json, math, os
import torch, torch.nn as nn, torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file

here = os.path.dirname(os.path.abspath(__file__))
path = os.path.join(here, "diffusion_tiny.safetensors")
with safe_open(path, "pt") as f:
    cfg = json.loads(f.metadata()["config"])

class MHA(nn.Module):
    def __init__(s, d, heads, ctx=None):
        super().__init__(); ctx = ctx or d; s.h = heads
        s.query, s.key, s.value, s.output = nn.Linear(d, d), nn.Linear(ctx, d), nn.Linear(ctx, d), nn.Linear(d, d)
    def forward(s, x, context=None, pad=None):
        src = x if context is None else context
        b, tq, d = x.shape; tk = src.shape[1]; dh = d // s.h
        q = s.query(x).reshape(b, tq, s.h, dh).transpose(1, 2)
        k = s.key(src).reshape(b, tk, s.h, dh).transpose(1, 2)
        v = s.value(src).reshape(b, tk, s.h, dh).transpose(1, 2)
        scores = q @ k.transpose(-1, -2) / math.sqrt(dh)
        if pad is not None: scores = scores.masked_fill(pad[:, None, None, :], float("-inf"))
        p = torch.nan_to_num(torch.softmax(scores, -1))  # fully masked rows → zeros (engine convention)
        return s.output((p @ v).transpose(1, 2).reshape(b, tq, d))

class ResBlock(nn.Module):
    def __init__(s, cin, cout, e, g):
        super().__init__()
        s.norm1, s.conv1, s.embedding = nn.GroupNorm(g, cin), nn.Conv2d(cin, cout, 3, padding=1), nn.Linear(e, cout)
        s.norm2, s.conv2 = nn.GroupNorm(g, cout), nn.Conv2d(cout, cout, 3, padding=1)
        if cin != cout: s.skip = nn.Conv2d(cin, cout, 1)
    def forward(s, x, e):
        h = s.conv1(F.silu(s.norm1(x))) + s.embedding(e)[:, :, None, None]
        h = s.conv2(F.silu(s.norm2(h)))
        return (s.skip(x) if hasattr(s, "skip") else x) + h

class SpatialAttention(nn.Module):
    def __init__(s, c, ctx, heads):
        super().__init__()
        s.norm1, s.norm2 = nn.LayerNorm(c), nn.LayerNorm(c)
        s.add_module("self", MHA(c, heads)); s.cross = MHA(c, heads, ctx)
    def forward(s, x, ctx, pad):
        b, c, h, w = x.shape
        t = x.reshape(b, c, h * w).transpose(1, 2)
        t = t + s._modules["self"](s.norm1(t))
        t = t + s.cross(s.norm2(t), ctx, pad)
        return t.transpose(1, 2).reshape(b, c, h, w)

class Layer(nn.Module):
    def __init__(s, d, heads, ratio):
        super().__init__()
        s.norm1, s.attention, s.norm2 = nn.LayerNorm(d), MHA(d, heads), nn.LayerNorm(d)
        s.fc1, s.fc2 = nn.Linear(d, ratio * d), nn.Linear(ratio * d, d)
    def forward(s, x, pad):
        x = x + s.attention(s.norm1(x), pad=pad)
        return x + s.fc2(F.gelu(s.fc1(s.norm2(x))))

class TextEncoder(nn.Module):
    def __init__(s):
        super().__init__(); d = cfg["text_dimension"]
        s.token = nn.Embedding(len(cfg["vocabulary"]) + 1, d, padding_idx=0)
        s.position = nn.Parameter(torch.zeros(cfg["max_tokens"], d))
        for i in range(cfg["text_layers"]): s.add_module(f"layer{i}", Layer(d, cfg["text_heads"], cfg["text_mlp_ratio"]))
        s.final_norm = nn.LayerNorm(d); s.null = nn.Parameter(torch.zeros(d))
    def forward(s, ids):
        pad = ids == 0
        x = s.token(ids) + s.position
        for i in range(cfg["text_layers"]): x = s._modules[f"layer{i}"](x, pad)
        t = s.final_norm(x)
        keep = (~pad).to(t.dtype); n = keep.sum(1, keepdim=True)
        return t, (t * (keep / n.clamp(min=1))[:, :, None]).sum(1) + (n == 0).to(t.dtype) * s.null, pad

class UNet(nn.Module):
    def __init__(s):
        super().__init__()
        ch, e, g, L = cfg["channels"], cfg["embedding_dimension"], cfg["norm_groups"], len(cfg["channels"])
        s.time1, s.time2 = nn.Linear(cfg["time_dimension"], e), nn.Linear(e, e)
        s.add_module("text", nn.Linear(cfg["text_dimension"], e))
        s.conv_in = nn.Conv2d(cfg["image_channels"], ch[0], 3, padding=1)
        skips, cur = [], ch[0]
        for l, c in enumerate(ch):
            blocks = nn.ModuleList()
            for j in range(cfg["res_blocks"]): blocks.append(ResBlock(cur, c, e, g)); cur = c; skips.append(c)
            s.add_module(f"down{l}", blocks)
            if cfg["image_size"] >> l in cfg["attention_resolutions"]:
                s.add_module(f"attention{l}", SpatialAttention(c, cfg["text_dimension"], cfg["attention_heads"]))
            if l + 1 < L: s.add_module(f"downsample{l}", nn.Conv2d(c, c, 3, stride=2, padding=1))
        for l in reversed(range(L)):
            blocks = nn.ModuleList()
            for j in range(cfg["res_blocks"]): blocks.append(ResBlock(cur + skips.pop(), ch[l], e, g)); cur = ch[l]
            s.add_module(f"up{l}", blocks)
            if l > 0: s.add_module(f"upsample{l}", nn.Conv2d(cur, cur, 3, padding=1))
        s.norm_out, s.conv_out = nn.GroupNorm(g, cur), nn.Conv2d(cur, cfg["image_channels"], 3, padding=1)
    def forward(s, x, t, ctx, pad, pooled):
        half = cfg["time_dimension"] // 2
        f = t[:, None].to(x.dtype) * torch.exp(-math.log(10000) * torch.arange(half, dtype=x.dtype) / half)[None]
        e = F.silu(s.time2(F.silu(s.time1(torch.cat([f.cos(), f.sin()], 1)))) + s._modules["text"](pooled))
        h = s.conv_in(x); skips = []; L = len(cfg["channels"]); m = s._modules
        for l in range(L):
            blocks = m[f"down{l}"]
            for j, blk in enumerate(blocks):
                h = blk(h, e)
                if j == len(blocks) - 1 and f"attention{l}" in m: h = m[f"attention{l}"](h, ctx, pad)
                skips.append(h)
            if l + 1 < L: h = m[f"downsample{l}"](h)
        for l in reversed(range(L)):
            for blk in m[f"up{l}"]: h = blk(torch.cat([h, skips.pop()], 1), e)
            if l > 0: h = m[f"upsample{l}"](F.interpolate(h, scale_factor=2, mode="nearest"))
        return s.conv_out(F.silu(s.norm_out(h)))

class Model(nn.Module):
    def __init__(s):
        super().__init__(); s.text = TextEncoder(); s.unet = UNet()
    def forward(s, x, t, ids):
        ctx, pooled, pad = s.text(ids)
        return s.unet(x, t, ctx, pad, pooled)

model = Model()
model.load_state_dict({k: v.double() for k, v in load_file(path).items()}, strict=True)
model = model.double()
gen = torch.Generator().manual_seed(0)
S, C = cfg["image_size"], cfg["image_channels"]
x = torch.randn(3, C, S, S, generator=gen, dtype=torch.float64).float().double()  # float32-representable
t = torch.tensor([3, 480, 999])
ids = torch.tensor([[2, 5, 0, 0], [1, 4, 6, 8], [0, 0, 0, 0]])  # "red circle", "a blue square left", null
with torch.no_grad():
    eps = model(x, t, ids)
json.dump({"torch": torch.__version__, "x": x.flatten().tolist(), "timesteps": t.tolist(), "tokens": ids.flatten().tolist(),
           "shape": list(eps.shape), "eps": eps.flatten().tolist()},
          open(os.path.join(here, "diffusion_golden.json"), "w"))
print("wrote diffusion_golden.json", list(eps.shape), float(eps.abs().mean()))
