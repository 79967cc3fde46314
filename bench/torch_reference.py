# PyTorch reference for the engine benchmarks (Sources/Core/Bench/Benchmarks.swift): the same
# shapes, forward + backward, 2 threads, median of N runs, printed as JSON.
# Usage: python3 bench/torch_reference.py [--batch 32] [--iterations 10]
import argparse, json, resource, time
import torch
import torch.nn.functional as F

ap = argparse.ArgumentParser()
ap.add_argument("--batch", type=int, default=32)
ap.add_argument("--iterations", type=int, default=10)
ap.add_argument("--threads", type=int, default=2)
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
