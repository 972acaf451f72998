#!/usr/bin/env python3
"""prep.py IN.cu OUT.cpp - rewrites one of attn's CUDA sources into C++ for the emulator.

Three rewrites, nothing else: a kernel launch `k<<<grid, block, smem, stream>>>(args);` becomes
`{ emu_config(grid, block, smem, stream); emu_run([&] { k(args); }); }`; a dynamic shared
array `extern __shared__ [__align__(N)] float name[];` becomes a pointer to the emulator's
per-block buffer; and a static one, `__shared__ T name[...];`, becomes a static variable that
the emulator fills with NaN bytes (0xff) at every block start (emu_static_smem), as it does the
dynamic buffer, so that a read of an element no thread of the block wrote gives garbage rather
than what an earlier block left there.
Everything else (the __global__ and __device__ qualifiers, threadIdx, shuffles, barriers) is
supplied by the headers in shim/.
"""
import re
import sys

LAUNCH = re.compile(r'(\w+(?:<[^<>]*>)?)\s*<<<(.*?)>>>\s*\((.*?)\);', re.S)
DYNAMIC_SHARED = re.compile(r'extern __shared__ (?:__align__\(\d+\) )?float (\w+)\[\];')
STATIC_SHARED = re.compile(r'(?<!extern )__shared__ ([^;=(){}]+?) (\w+)((?:\[[^\]]*\])*);')

with open(sys.argv[1]) as f:
    src = f.read()
src = LAUNCH.sub(lambda m: '{ emu_config(%s); emu_run([&] { %s(%s); }); }'
                 % (m.group(2), m.group(1), m.group(3)), src)
src = DYNAMIC_SHARED.sub(r'float *\1 = (float *)emu_dynamic_smem();', src)
src = STATIC_SHARED.sub(r'static \1 \2\3; emu_static_smem(&\2, sizeof \2);', src)
with open(sys.argv[2], 'w') as f:
    f.write(src)
