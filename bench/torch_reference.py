# PyTorch reference for `semidpo bench` (Sources/Core/Bench/): the same building-block shapes, or with
# --model the same diffusion model (train, forward, DPO, guided step), median of N runs, printed as JSON.
# Usage: python3 bench/torch_reference.py [--batch 32] [--iterations 10]
#        python3 bench/torch_reference.py --model   (the reference diffusion model, as runModelBenchmarks)
import argparse, json, resource, time
import torch
import torch.nn.functional as F

ap = argparse.ArgumentParser()
ap.add_argument("--batch", type=int, default=32)
ap.add_argument("--iterations", type=int, default=10)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--model", action="store_true", help="time the SPEC §4 diffusion model instead of the building blocks")
args = ap.parse_args()
torch.set_num_threads(args.threads)
torch.manual_seed(0)
B, N = args.batch, args.iterations
results = []

def measure(name, shape, flops, fn):
    fn(); fn()
    times = []
    for _ in range(N):
        t0 = time.perf_counter(); fn(); times.append((time.perf_counter() - t0) * 1e3)
    ms = sorted(times)[len(times) // 2]
    results.append({"name": name, "shape": shape, "milliseconds": ms, "best_milliseconds": min(times),
                    "gflops": (flops / (ms * 1e6)) if flops else None, "threads": args.threads})

def conv(cin, cout, size, k, s):
    x = torch.randn(B, cin, size, size, requires_grad=True)
    layer = torch.nn.Conv2d(cin, cout, k, stride=s, padding=k // 2)
    out = (size + 2 * (k // 2) - k) // s + 1
    dy = torch.randn(B, cout, out, out)
    def fn():
        x.grad = None; layer.zero_grad(set_to_none=True)
        layer(x).backward(dy)
    measure(f"conv{k}x{k}_s{s}_{cin}to{cout}_{size}px_fwd_bwd", f"x({B},{cin},{size},{size})→{cout}", 3 * 2 * B * cout * out * out * cin * k * k, fn)

if args.model:
    import math
    import torch.nn as nn

    class MHA(nn.Module):  # Sources/Core/NN/Layers.swift MultiHeadAttention: q, k, v, out projections
        def __init__(self, d, heads, ctx=None):
            super().__init__(); ctx = ctx or d; self.h = heads
            self.query, self.key, self.value, self.output = nn.Linear(d, d), nn.Linear(ctx, d), nn.Linear(ctx, d), nn.Linear(d, d)
        def forward(self, x, context=None, pad=None):
            src = x if context is None else context
            b, tq, d = x.shape; tk = src.shape[1]
            sh = lambda t, n: t.reshape(b, n, self.h, d // self.h).transpose(1, 2)
            mask = None if pad is None else (~pad)[:, None, None, :]
            o = F.scaled_dot_product_attention(sh(self.query(x), tq), sh(self.key(src), tk), sh(self.value(src), tk), attn_mask=mask)
            o = torch.nan_to_num(o)  # the Swift engine returns zeros for fully masked rows
            return self.output(o.transpose(1, 2).reshape(b, tq, d))

    class ResBlock(nn.Module):  # Sources/Core/NN/ResBlock.swift
        def __init__(self, cin, cout, e, g=8):
            super().__init__()
            self.norm1, self.conv1, self.embedding = nn.GroupNorm(g, cin), nn.Conv2d(cin, cout, 3, padding=1), nn.Linear(e, cout)
            self.norm2, self.conv2 = nn.GroupNorm(g, cout), nn.Conv2d(cout, cout, 3, padding=1)
            self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None
        def forward(self, x, e):
            h = self.conv1(F.silu(self.norm1(x))) + self.embedding(e)[:, :, None, None]
            h = self.conv2(F.silu(self.norm2(h)))
            return (x if self.skip is None else self.skip(x)) + h

    class SpatialAttention(nn.Module):
        def __init__(self, c, ctx, heads=4):
            super().__init__()
            self.norm1, self.self_attn, self.norm2, self.cross = nn.LayerNorm(c), MHA(c, heads), nn.LayerNorm(c), MHA(c, heads, ctx)
        def forward(self, x, ctx, pad):
            b, c, h, w = x.shape
            t = x.reshape(b, c, h * w).transpose(1, 2)
            t = t + self.self_attn(self.norm1(t))
            t = t + self.cross(self.norm2(t), ctx, pad)
            return t.transpose(1, 2).reshape(b, c, h, w)

    class TextEncoder(nn.Module):  # Sources/Core/NN/TextEncoder.swift
        def __init__(self, vocab, length=8, d=64, heads=4):
            super().__init__()
            self.token = nn.Embedding(vocab, d, padding_idx=0); self.position = nn.Parameter(0.02 * torch.randn(length, d))
            self.norm1, self.attention, self.norm2 = nn.LayerNorm(d), MHA(d, heads), nn.LayerNorm(d)
            self.fc1, self.fc2, self.final_norm = nn.Linear(d, 4 * d), nn.Linear(4 * d, d), nn.LayerNorm(d)
            self.null = nn.Parameter(torch.zeros(d))
        def forward(self, ids):
            pad = ids == 0
            x = self.token(ids) + self.position
            x = x + self.attention(self.norm1(x), pad=pad)
            x = x + self.fc2(F.gelu(self.fc1(self.norm2(x))))
            t = self.final_norm(x)
            keep = (~pad).float(); n = keep.sum(1, keepdim=True)
            pooled = (t * (keep / n.clamp(min=1))[:, :, None]).sum(1) + (n == 0).float() * self.null
            return t, pooled, pad

    class UNet(nn.Module):  # Sources/Core/NN/UNet.swift, channels (32, 64), attention at 8×8
        def __init__(self, vocab, ch=(32, 64), e=128):
            super().__init__()
            self.text = TextEncoder(vocab)
            self.time1, self.time2, self.textproj = nn.Linear(32, e), nn.Linear(e, e), nn.Linear(64, e)
            self.conv_in = nn.Conv2d(3, ch[0], 3, padding=1)
            self.down0 = nn.ModuleList([ResBlock(32, 32, e), ResBlock(32, 32, e)])
            self.downsample0 = nn.Conv2d(32, 32, 3, stride=2, padding=1)
            self.down1 = nn.ModuleList([ResBlock(32, 64, e), ResBlock(64, 64, e)])
            self.attention1 = SpatialAttention(64, 64)
            self.up1 = nn.ModuleList([ResBlock(128, 64, e), ResBlock(128, 64, e)])
            self.upsample1 = nn.Conv2d(64, 64, 3, padding=1)
            self.up0 = nn.ModuleList([ResBlock(96, 32, e), ResBlock(64, 32, e)])
            self.norm_out, self.conv_out = nn.GroupNorm(8, 32), nn.Conv2d(32, 3, 3, padding=1)
        def forward(self, x, t, ids):
            ctx, pooled, pad = self.text(ids)
            f = torch.exp(-math.log(10000) * torch.arange(16) / 16)[None] * t[:, None].float()
            e = F.silu(self.time2(F.silu(self.time1(torch.cat([f.cos(), f.sin()], 1)))) + self.textproj(pooled))
            h = self.conv_in(x); skips = []
            for blk in self.down0: h = blk(h, e); skips.append(h)
            h = self.downsample0(h)
            h = self.down1[0](h, e); skips.append(h)
            h = self.attention1(self.down1[1](h, e), ctx, pad); skips.append(h)
            for blk in self.up1: h = blk(torch.cat([h, skips.pop()], 1), e)
            h = self.upsample1(F.interpolate(h, scale_factor=2, mode="nearest"))
            for blk in self.up0: h = blk(torch.cat([h, skips.pop()], 1), e)
            return self.conv_out(F.silu(self.norm_out(h)))

    net = UNet(41)
    params = sum(p.numel() for p in net.parameters())
    FWD = 0.1281e9  # DiffusionModel.forwardFLOPs of the same architecture (analytic)
    def ids(n):
        out = torch.zeros(n, 8, dtype=torch.long)
        for i in range(n):
            if i % 10: out[i, :3 + i % 4] = torch.tensor([1 + (i * 7 + j * 3) % 40 for j in range(3 + i % 4)])
        return out
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4, weight_decay=0.0)
    x0, tk = torch.rand(B, 3, 16, 16) * 2 - 1, ids(B)
    def train():
        t = torch.randint(0, 1000, (B,)); eps = torch.randn_like(x0)
        opt.zero_grad(set_to_none=True)
        loss = F.mse_loss(net(0.9 * x0 + 0.4 * eps, t, tk), eps); loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0); opt.step()
    measure("train_step", f"batch {B}", 3 * FWD * B, train)
    F64 = 64; xf, tf, kf = torch.randn(F64, 3, 16, 16), torch.arange(F64) * 37 % 1000, ids(F64)
    def fwd():
        with torch.no_grad(): net(xf, tf, kf)
    measure("forward", f"batch {F64}", FWD * F64, fwd)
    xs, ks = torch.randn(2 * F64, 3, 16, 16), torch.cat([kf, torch.zeros_like(kf)])
    def guided():
        with torch.no_grad():
            o = net(xs, torch.full((2 * F64,), 500), ks); c, u = o[:F64], o[F64:]; _ = u + 3 * (c - u)
    measure("sampling_guided_ddim_step", f"rows {2 * F64}", FWD * 2 * F64, guided)
    # Diffusion-DPO step on 16 pairs, as Sources/Core/Preference/Training.swift evaluatePairs + AdamW:
    # policy forward+backward on [winners; losers] (32 images, shared noise and timesteps), the frozen
    # reference forward under no_grad, sigmoid loss z = β·label·[(ref_w − ref_l) − (pol_w − pol_l)].
    import copy
    P = 16
    policy, reference = copy.deepcopy(net), copy.deepcopy(net).requires_grad_(False)
    dopt = torch.optim.AdamW(policy.parameters(), lr=1e-5, weight_decay=0.0)
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    abar = torch.cumprod(1 - betas, 0).float()
    xw, xl, noise = torch.rand(P, 3, 16, 16) * 2 - 1, torch.rand(P, 3, 16, 16) * 2 - 1, torch.randn(P, 3, 16, 16)
    labels = torch.tensor([-1.0 if i % 3 == 2 else 1.0 for i in range(P)])
    tp, kp = (torch.arange(P) * 61 + 13) % 1000, ids(P)
    x2, e2, t2, k2 = torch.cat([xw, xl]), torch.cat([noise, noise]), torch.cat([tp, tp]), torch.cat([kp, kp])
    def per_sample_mse(m, x0, eps, t, k):
        a = abar[t][:, None, None, None]
        return ((m(a.sqrt() * x0 + (1 - a).sqrt() * eps, t, k) - eps) ** 2).mean((1, 2, 3))
    def dpo():
        dopt.zero_grad(set_to_none=True)
        mse = per_sample_mse(policy, x2, e2, t2, k2)
        with torch.no_grad(): ref = per_sample_mse(reference, x2, e2, t2, k2)
        z = 2500.0 * labels * ((ref[:P] - ref[P:]) - (mse[:P] - mse[P:]))
        loss = -F.logsigmoid(z).mean(); loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0); dopt.step()
    measure("dpo_step", f"pairs {P}", 4 * FWD * 2 * P, dpo)
    per = {"train_step": B, "forward": F64, "dpo_step": P, "sampling_guided_ddim_step": 2 * F64}
    for r in results:
        r["per_second"] = per[r["name"]] / (r["milliseconds"] / 1e3)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"torch_version": torch.__version__, "threads": args.threads, "parameters": params,
                      "peak_rss_mb": peak_mb, "results": results}, indent=1))
    raise SystemExit

conv(32, 32, 16, 3, 1); conv(64, 64, 8, 3, 1); conv(96, 64, 16, 3, 1); conv(32, 32, 16, 3, 2); conv(96, 64, 16, 1, 1)

rows = B * 64
x = torch.randn(rows, 64, requires_grad=True); lin = torch.nn.Linear(64, 64); dy = torch.randn(rows, 64)
def lin_fn():
    x.grad = None; lin.zero_grad(set_to_none=True); lin(x).backward(dy)
measure("linear_fwd_bwd", f"x({rows},64)→64", 3 * 2 * rows * 64 * 64, lin_fn)

gx = torch.randn(B, 64, 16, 16, requires_grad=True); gn = torch.nn.GroupNorm(8, 64); gdy = torch.randn_like(gx)
def gn_fn():
    gx.grad = None; gn.zero_grad(set_to_none=True); gn(gx).backward(gdy)
measure("groupnorm_fwd_bwd", f"x({B},64,16,16) G=8", None, gn_fn)

for name, tk in [("self_attention_fwd_bwd", 64), ("cross_attention_fwd_bwd", 8)]:
    q = torch.randn(B, 64, 64, requires_grad=True)
    k = torch.randn(B, tk, 64, requires_grad=True)
    v = torch.randn(B, tk, 64, requires_grad=True)
    ady = torch.randn(B, 64, 64)
    def heads(t):
        return t.reshape(t.shape[0], t.shape[1], 4, 16).transpose(1, 2)
    def attn_fn():
        q.grad = k.grad = v.grad = None
        o = F.scaled_dot_product_attention(heads(q), heads(k), heads(v)).transpose(1, 2).reshape(B, 64, 64)
        o.backward(ady)
    measure(name, f"q({B},64,64) k,v({B},{tk},64) 4 heads", 3 * 4 * B * 64 * tk * 64, attn_fn)

# ru_maxrss is in KiB on Linux: the peak resident memory of this process, to compare with semidpo's.
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"torch_version": torch.__version__, "threads": args.threads, "peak_rss_mb": peak_mb,
                  "results": results}, indent=1))
