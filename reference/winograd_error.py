"""How accurate Winograd's F(2x2, 3x3) (convkit's kernels/winograd.rs) and F(4x4, 3x3) (the next candidate: 2.25
multiplies per output instead of 4) are in float32, against the direct convolution in float64: He-initialised
3x3 kernels, unit-normal 16x16 inputs. Output: winograd_error.txt. Run with numpy:
    python3 reference/winograd_error.py > reference/winograd_error.txt
"""
import numpy as np
rng = np.random.default_rng(0)
BT4 = np.array([[4,0,-5,0,1,0],[0,-4,-4,1,1,0],[0,4,-4,-1,1,0],[0,-2,-1,2,1,0],[0,2,-1,-2,1,0],[0,4,0,-5,0,1]], float)
G4 = np.array([[1/4,0,0],[-1/6,-1/6,-1/6],[-1/6,1/6,-1/6],[1/24,1/12,1/6],[1/24,-1/12,1/6],[0,0,1]], float)
AT4 = np.array([[1,1,1,1,1,0],[0,1,-1,2,-2,0],[0,1,1,4,4,0],[0,1,-1,8,-8,1]], float)
BT2 = np.array([[1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]], float)
G2 = np.array([[1,0,0],[.5,.5,.5],[.5,-.5,.5],[0,0,1]], float)
AT2 = np.array([[1,1,1,0],[0,1,-1,-1]], float)
def wino(x, g, BT, G, AT, m, dt):
    C, H, W = x.shape; K = g.shape[0]; a = m + 2
    xp = np.zeros((C, H + 2 + a, W + 2 + a), dt); xp[:, 1:H+1, 1:W+1] = x
    U = np.einsum('ij,kcjl,ml->kcim', G.astype(dt), g.astype(dt), G.astype(dt)).astype(dt)
    y = np.zeros((K, H, W), dt)
    for ty in range(0, H, m):
        for tx in range(0, W, m):
            d = xp[:, ty:ty+a, tx:tx+a]
            V = np.einsum('ij,cjl,ml->cim', BT.astype(dt), d, BT.astype(dt)).astype(dt)
            M = np.einsum('kcij,cij->kij', U, V).astype(dt)
            Y = np.einsum('ij,kjl,ml->kim', AT.astype(dt), M, AT.astype(dt)).astype(dt)
            hh, ww = min(m, H - ty), min(m, W - tx)
            y[:, ty:ty+hh, tx:tx+ww] = Y[:, :hh, :ww]
    return y
def direct(x, g):
    C, H, W = x.shape; xp = np.pad(x, ((0,0),(1,1),(1,1)))
    return np.einsum('kcij,cyxij->kyx', g, np.lib.stride_tricks.sliding_window_view(xp, (3,3), axis=(1,2)))
for C in (16, 64):
    x = rng.standard_normal((C, 16, 16)); g = rng.standard_normal((C, C, 3, 3)) * np.sqrt(2 / (9 * C))
    ref = direct(x, g); scale = np.abs(ref).max()
    for name, args in (('F(2,3)', (BT2, G2, AT2, 2)), ('F(4,3)', (BT4, G4, AT4, 4))):
        e64 = np.abs(wino(x, g, *args, np.float64) - ref).max()
        e32 = np.abs(wino(x.astype(np.float32), g.astype(np.float32), *args, np.float32) - ref).max()
        print(f"C=K={C} {name}: f64 max err {e64:.1e}, f32 max err {e32:.1e} (outputs up to {scale:.1f}; relative {e32/scale:.1e})")
    e = np.abs(direct(x.astype(np.float32), g.astype(np.float32)) - ref).max()
    print(f"  direct f32 {e:.1e}")
