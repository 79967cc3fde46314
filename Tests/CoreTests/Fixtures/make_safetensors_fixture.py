# Writes python_fixture.safetensors for SafetensorsTests (run: python3 make_safetensors_fixture.py).
# Needs `pip install safetensors numpy` (made with safetensors 0.8.0, numpy 2.4.6).
import numpy as np
from safetensors.numpy import save_file

tensors = {
    "weight": np.arange(6, dtype=np.float32).reshape(2, 3) * 0.5 - 1.0,  # [[-1,-.5,0],[.5,1,1.5]]
    "bias": np.array([1e-3, -2.5, 3.25, 7.0], dtype=np.float32),
    "scalar": np.array(42.0, dtype=np.float32),
}
save_file(tensors, "python_fixture.safetensors", metadata={"made_by": "python", "note": "fixture"})
