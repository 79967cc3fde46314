# Produces engine_goldens.json: inputs, outputs and gradients of several ops computed by PyTorch
# (float64), which EngineGoldenTests.swift compares against. Run: python3 make_goldens.py
import json
import torch
import torch.nn.functional as F

torch.manual_seed(0)
torch.set_default_dtype(torch.float64)
cases = {}

def flat(t):
    return t.detach().reshape(-1).tolist()

def case(name, inputs, outputs):
    cases[name] = {
        "inputs": {k: {"shape": list(v.shape), "data": flat(v)} for k, v in inputs.items()},
        "outputs": {k: {"shape": list(v.shape), "data": flat(v)} for k, v in outputs.items()},
    }

# conv2d 3x3 stride 2 padding 1, with gradients of sum(y * w_out)
x = torch.randn(2, 3, 5, 5, requires_grad=True)
w = torch.randn(4, 3, 3, 3, requires_grad=True)
b = torch.randn(4, requires_grad=True)
y = F.conv2d(x, w, b, stride=2, padding=1)
g = torch.randn_like(y)
(y * g).sum().backward()
case("conv2d_s2p1", {"x": x, "weight": w, "bias": b, "dy": g},
     {"y": y, "dx": x.grad, "dweight": w.grad, "dbias": b.grad})

# group norm (2 groups) with gradients
x = torch.randn(2, 4, 3, 3, requires_grad=True)
gw = torch.randn(4, requires_grad=True)
gb = torch.randn(4, requires_grad=True)
y = F.group_norm(x, 2, gw, gb, eps=1e-5)
g = torch.randn_like(y)
(y * g).sum().backward()
case("group_norm", {"x": x, "weight": gw, "bias": gb, "dy": g}, {"y": y, "dx": x.grad, "dweight": gw.grad})

# layer norm
x = torch.randn(3, 6)
lw = torch.randn(6)
lb = torch.randn(6)
case("layer_norm", {"x": x, "weight": lw, "bias": lb}, {"y": F.layer_norm(x, (6,), lw, lb, eps=1e-5)})

# activations
x = torch.linspace(-30, 30, 13)
case("activations", {"x": x}, {"gelu": F.gelu(x), "silu": F.silu(x), "logsigmoid": F.logsigmoid(x),
                               "sigmoid": torch.sigmoid(x), "softmax": torch.softmax(x, dim=0)})

# multi-head attention on projected q, k, v (B=2, Tq=3, Tk=4, D=8, 2 heads), key padding mask
q = torch.randn(2, 3, 8)
k = torch.randn(2, 4, 8)
v = torch.randn(2, 4, 8)
mask = torch.tensor([[False, False, False, True], [False, True, True, True]])
def heads(t):
    return t.reshape(t.shape[0], t.shape[1], 2, 4).transpose(1, 2)
attn_mask = ~mask[:, None, None, :]
o = F.scaled_dot_product_attention(heads(q), heads(k), heads(v), attn_mask=attn_mask)
o = o.transpose(1, 2).reshape(2, 3, 8)
case("attention", {"q": q, "k": k, "v": v, "mask": mask.double()}, {"y": o})

# upsample nearest x2
x = torch.randn(1, 2, 2, 3)
case("upsample", {"x": x}, {"y": F.interpolate(x, scale_factor=2, mode="nearest")})

# AdamW: 3 steps on a fixed parameter with fixed gradients
p = torch.randn(5, requires_grad=True)
p0 = p.detach().clone()
opt = torch.optim.AdamW([p], lr=0.1, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.05)
grads = [torch.randn(5) for _ in range(3)]
for gr in grads:
    opt.zero_grad()
    p.grad = gr.clone()
    opt.step()
case("adamw", {"p": p0, "g0": grads[0], "g1": grads[1], "g2": grads[2]}, {"p": p})

with open("engine_goldens.json", "w") as f:
    json.dump({"torch_version": torch.__version__, "cases": cases}, f)
print("wrote", len(cases), "cases with torch", torch.__version__)
