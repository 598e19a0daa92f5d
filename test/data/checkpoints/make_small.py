"""Writes small.ckpt: a torch.save-style checkpoint (zip: small/data.pkl + small/data/N) made with the Python
standard library only, for the converter's unit and fuzz tests. Stand-ins named like torch's and OmegaConf's
globals are registered in sys.modules so that pickle writes the same GLOBAL opcodes torch.save does; nothing
of torch is needed. The tensors cover float32, float16, bfloat16 and int64 storages, a storage shared by two
tensors at different offsets, and a transposed (non-contiguous) view.
Usage: python3 make_small.py OUT.ckpt"""
import collections, io, pickle, struct, sys, types, zipfile

def fake(module, name, obj):
    parts = module.split(".")
    for i in range(1, len(parts) + 1):  # pickle imports the parents too
        sys.modules.setdefault(".".join(parts[:i]), types.ModuleType(".".join(parts[:i])))
    m = sys.modules[module]
    obj.__module__, obj.__qualname__, obj.__name__ = module, name, name
    setattr(m, name, obj)
    return obj

def _rebuild_tensor_v2(*a): pass
fake("torch._utils", "_rebuild_tensor_v2", _rebuild_tensor_v2)
Storage = {k: fake("torch", k, type(k, (), {})) for k in ("FloatStorage", "HalfStorage", "BFloat16Storage", "LongStorage")}

class Node:  # OmegaConf's containers and nodes pickle as NEWOBJ + BUILD of their __dict__
    def __reduce_ex__(self, proto):
        return (copyreg_newobj, (type(self),), self.__dict__)
import copyreg
copyreg_newobj = copyreg.__newobj__
DictConfig = fake("omegaconf.dictconfig", "DictConfig", type("DictConfig", (Node,), {}))
AnyNode = fake("omegaconf.nodes", "AnyNode", type("AnyNode", (Node,), {}))

class T:  # a tensor: storage key, dtype, offset, size, stride
    def __init__(self, key, storage, offset, size, stride):
        self.key, self.storage, self.offset, self.size, self.stride = key, storage, offset, size, stride
    def __reduce_ex__(self, proto):
        return (_rebuild_tensor_v2, (StorageRef(self.key, self.storage), self.offset, self.size, self.stride, False,
                                     collections.OrderedDict()))
class StorageRef:
    def __init__(self, key, storage): self.key, self.storage = key, storage

storages = {
    "0": ("FloatStorage", struct.pack("<6f", 1, 2, 3, 4, 5, 6)),
    "1": ("HalfStorage", struct.pack("<3e", 0.5, -2.0, 65504.0)),
    "2": ("BFloat16Storage", b"".join(struct.pack("<f", x)[2:] for x in (1.0, -0.375, 3.0e38))),
    "3": ("LongStorage", struct.pack("<2q", 7, -9)),
}
numel = {"0": 6, "1": 3, "2": 3, "3": 2}

class P(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, StorageRef):
            return ("storage", Storage[storages[obj.key][0]], obj.key, "cpu", numel[obj.key])
        return None

def node(v):
    n = AnyNode(); n._val = v; n._parent = None; return n
cfg = DictConfig()
cfg._content = {"model": node("janusdna_lm"), "max_length": node(16), "gpu_mem": node("${eval:__import__('os')}")}
cfg._parent = None
state = collections.OrderedDict([
    ("model.a", T("0", "FloatStorage", 0, (2, 3), (3, 1))),
    ("model.a_t", T("0", "FloatStorage", 0, (3, 2), (1, 3))),      # a transposed view of the same storage
    ("model.tail", T("0", "FloatStorage", 4, (2,), (1,))),
    ("model.half", T("1", "HalfStorage", 0, (3,), (1,))),
    ("model.bf16", T("2", "BFloat16Storage", 0, (3,), (1,))),
    ("steps", T("3", "LongStorage", 1, (), ())),
])
buf = io.BytesIO()
P(buf, protocol=2).dump({"epoch": 3, "global_step": 10000, "pytorch-lightning_version": "2.4.0",
                         "state_dict": state, "hyper_parameters": cfg})
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_STORED) as z:
    z.writestr("small/data.pkl", buf.getvalue())
    for k, (_, b) in storages.items():
        z.writestr("small/data/" + k, b)
    z.writestr("small/version", "3\n")
