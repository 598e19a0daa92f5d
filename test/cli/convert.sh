#!/usr/bin/env bash
# Command-line tests of janusdna convert (issue 18): the reference's layouts reproduce the fixtures through predict,
# a crafted checkpoint is refused without running anything, the Hugging Face export round-trips.
. "$(dirname "$0")/lib.sh"
CK=$DATA/checkpoints
C="$BIN convert"

# compare_st PRED EXPECTED: predict's NAME.logits / NAME.hidden equal the fixture's logits / hidden to 1e-4.
compare_st() {
  python3 - "$1" "$2" <<'PY'
import json, struct, sys
def load(p):
    b = open(p, 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n]); d = b[8 + n:]
    out = {}
    for k, v in h.items():
        if k == '__metadata__' or v['dtype'] != 'F32': continue
        s, e = v['data_offsets']; out[k] = (v['shape'], struct.unpack('<%df' % ((e - s) // 4), d[s:e]))
    return out
pred, exp = load(sys.argv[1]), load(sys.argv[2])
for what in ('logits', 'hidden'):
    B, L, D = exp[what][0]
    for i in range(B):
        p = pred['seq%d.%s' % (i, what)]; x = exp[what][1][i * L * D:(i + 1) * L * D]
        assert p[0] == [L, D], p[0]
        d = max(abs(a - b) for a, b in zip(p[1], x))
        assert d <= 1e-4, (what, i, d)
PY
}

run usage 1 $C;                                          grep -q "Usage" usage.err && ok || bad "convert without input prints no usage"
run help 0 "$BIN" help convert;                          grep -q -- "--allow-global" help.out && ok || bad "help convert"

# --- each layout converts and reproduces the reference's logits and hidden states through predict -------------
run lightning 0 $C "$CK/tiny-midattn.lightning.ckpt" -o mid.safetensors
grep -q "inferred from the tensors: .*final_mlp" lightning.err && ok || bad "summary: $(cat lightning.err)"
run pred_mid 0 "$BIN" predict -m mid.safetensors -O safetensors -o mid.pred.safetensors "$DATA/tiny-midattn.fa"
compare_st mid.pred.safetensors "$DATA/tiny-midattn.expected.safetensors" && ok || bad "lightning: outputs differ"
run hf 0 $C "$CK/tiny-nomidattn.hf" -o nomid.safetensors
run pred_nomid 0 "$BIN" predict -m nomid.safetensors -O safetensors -o nomid.pred.safetensors "$DATA/tiny-nomidattn.fa"
compare_st nomid.pred.safetensors "$DATA/tiny-nomidattn.expected.safetensors" && ok || bad "hf: outputs differ"

# bare state dict + the reference's config.json given with --config; a sharded copy with its index
run bare 0 $C "$CK/tiny-nomidattn.hf/pytorch_model.bin" --config "$CK/tiny-nomidattn.hf/config.json" -o bare.safetensors
run bare_info 0 "$BIN" info -t bare.safetensors;  run nomid_info 0 "$BIN" info -t nomid.safetensors
cmp -s bare_info.out nomid_info.out && ok || bad "bare state dict and HF directory give different tensors"
mkdir -p sharded && cp "$CK/tiny-nomidattn.hf/config.json" sharded/
python3 - "$CK/tiny-nomidattn.hf/pytorch_model.bin" sharded <<'PY'
import shutil, sys, json, zipfile, pickletools
# two "shards": the same archive under two names, the index sending half the tensors to each
src, out = sys.argv[1], sys.argv[2]
shutil.copy(src, out + '/pytorch_model-00001-of-00002.bin'); shutil.copy(src, out + '/pytorch_model-00002-of-00002.bin')
z = zipfile.ZipFile(src); pkl = [n for n in z.namelist() if n.endswith('data.pkl')][0]
names = sorted({a for op, a, _ in pickletools.genops(z.read(pkl)) if op.name == 'BINUNICODE' and ('.' in a and a[0] != 'c')})
names = [n for n in names if n.startswith('model.') or n.startswith('lm_head')]
json.dump({'metadata': {}, 'weight_map': {n: 'pytorch_model-0000%d-of-00002.bin' % (1 + i % 2) for i, n in enumerate(names)}},
          open(out + '/pytorch_model.bin.index.json', 'w'))
PY
run sharded 0 $C sharded -o sharded.safetensors
run sharded_info 0 "$BIN" info -t sharded.safetensors
cmp -s sharded_info.out nomid_info.out && ok || bad "sharded checkpoint gives different tensors"
sed -i 's/"pytorch_model-00001-of-00002.bin"/"..\/evil.bin"/' sharded/pytorch_model.bin.index.json
run sharded_escape 1 $C sharded -o x.safetensors;  one_error sharded_escape "not a file name in the index's directory"; no_file x.safetensors

# --- the fine-tuned checkpoint: a classifier predict, embed and evaluate accept ----------------------------------
run tuned 0 $C "$CK/tiny-nomidattn.lightning-finetuned.ckpt" -o tuned.safetensors
grep -q "a classifier" tuned.err && ok || bad "tuned summary: $(cat tuned.err)"
run tuned_embed 0 "$BIN" embed -m tuned.safetensors --records "$DATA/tiny-nomidattn.fa" --window 0 --flank 0 \
    --pool none --dtype f32 -o tuned.emb.safetensors
python3 - tuned.emb.safetensors "$DATA/tiny-nomidattn.expected.safetensors" <<'PY' && ok || bad "tuned: hidden states differ"
import json, struct, sys
def load(p):
    b = open(p, 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n]); d = b[8 + n:]
    return {k: (v['shape'], struct.unpack('<%df' % ((v['data_offsets'][1] - v['data_offsets'][0]) // 4),
                                          d[v['data_offsets'][0]:v['data_offsets'][1]]))
            for k, v in h.items() if k != '__metadata__' and v['dtype'] == 'F32'}
emb, exp = load(sys.argv[1]), load(sys.argv[2])
B, L, H = exp['hidden'][0]
for i in range(B):
    e = emb['seq%d' % i][1]; x = exp['hidden'][1][i * L * H:(i + 1) * L * H]
    assert max(abs(a - b) for a, b in zip(e, x)) <= 1e-4, i
PY
run tuned_predict 0 "$BIN" predict -m tuned.safetensors "$DATA/tiny-nomidattn.fa"
[ "$(head -1 tuned_predict.out)" = "$(printf 'name\tpredicted\t0\t1')" ] && [ "$(wc -l < tuned_predict.out)" = 3 ] \
  && ok || bad "tuned predict: $(head -2 tuned_predict.out)"
run tuned_score 1 "$BIN" score-variants -m tuned.safetensors -f "$DATA/variants/ref.fa" "$DATA/variants/clinvar.vcf" -o x.vcf
one_error tuned_score "fine-tuned classifier"

# --- a crafted checkpoint: valid but for one object whose __reduce__ calls os.system ---------------------------
python3 - "$CK/tiny-midattn.lightning.ckpt" evil.ckpt "$TMP/PWNED" <<'PY'
import sys, zipfile
src, out, marker = sys.argv[1:]
zin = zipfile.ZipFile(src)
with zipfile.ZipFile(out, 'w', zipfile.ZIP_STORED) as zout:
    for info in zin.infolist():
        data = zin.read(info)
        if info.filename.endswith('/data.pkl'):
            assert data[:6] == b'\x80\x02}q\x00(', data[:6]
            cmd = ('touch ' + marker).encode()
            # one more item of the top-level dict: "evil": posix.system("touch MARKER"), as pickle writes it
            item = b'X\x04\x00\x00\x00evil' + b'cposix\nsystem\n' + b'X' + len(cmd).to_bytes(4, 'little') + cmd + b'\x85R'
            data = data[:6] + item + data[6:]
        zout.writestr(info.filename, data)
PY
run evil 1 $C evil.ckpt -o evil.safetensors
one_error evil "evil.ckpt: refused: the pickle would call posix.system; janusdna never runs code from a model file"
[ -e "$TMP/PWNED" ] && bad "the crafted checkpoint ran its command" || ok
no_file evil.safetensors
# --allow-global accepts a benign class as inert data; it is still never called
python3 - "$CK/tiny-midattn.lightning.ckpt" benign.ckpt <<'PY'
import sys, zipfile
zin = zipfile.ZipFile(sys.argv[1])
with zipfile.ZipFile(sys.argv[2], 'w', zipfile.ZIP_STORED) as zout:
    for info in zin.infolist():
        data = zin.read(info)
        if info.filename.endswith('/data.pkl'):
            data = data[:6] + b'X\x05\x00\x00\x00extrac' + b'mylab.callbacks\nRunInfo\n)\x81}X\x01\x00\x00\x00kK\x01sb' + data[6:]
        zout.writestr(info.filename, data)
PY
run benign 1 $C benign.ckpt -o b.safetensors;        one_error benign "would call mylab.callbacks.RunInfo"
run benign_ok 0 $C --allow-global mylab.callbacks.RunInfo benign.ckpt -o b.safetensors
cmp -s <("$BIN" info -t b.safetensors) <("$BIN" info -t mid.safetensors) && ok || bad "--allow-global changed the tensors"

# --- config: inferred fields, contradictions, missing fields -------------------------------------------------
printf '{"num_attention_heads": 4, "flex_attn_n_embd": 64, "num_experts_per_tok": 2}\n' > min.json
run minimal 0 $C "$CK/tiny-nomidattn.hf/pytorch_model.bin" --config min.json -o min.safetensors
grep -q "hidden_size" minimal.err && ok || bad "inferred fields not reported"
run contra 1 $C "$CK/tiny-midattn.lightning.ckpt" --set hidden_size=48 -o x.safetensors
one_error contra "config field hidden_size=48 contradicts the tensors, which give 32"
printf '{"flex_attn_n_embd": 64, "num_experts_per_tok": 2}\n' > nh.json
run noheads 1 $C "$CK/tiny-nomidattn.hf/pytorch_model.bin" --config nh.json -o x.safetensors
one_error noheads "give it with --set num_attention_heads=N"
run noconfig 1 $C "$CK/tiny-nomidattn.hf/pytorch_model.bin" -o x.safetensors;   one_error noconfig "--config"
no_file x.safetensors

# --- provenance in info; -m given a checkpoint says what to run ----------------------------------------------
run info 0 "$BIN" info mid.safetensors
grep -q 'meta\[janusdna_source\].*"global_step":10000' info.out && grep -q '"lightning_version":"2.4.0"' info.out \
  && ok || bad "provenance missing from info"
run m_ckpt 1 "$BIN" predict -m "$CK/tiny-midattn.lightning.ckpt" "$DATA/tiny-midattn.fa"
one_error m_ckpt "janusdna convert $CK/tiny-midattn.lightning.ckpt -o tiny-midattn.lightning.safetensors"
run m_hf 1 "$BIN" embed -m "$CK/tiny-nomidattn.hf" --records "$DATA/tiny-nomidattn.fa";  one_error m_hf "Hugging Face model directory"
run m_text 1 "$BIN" info "$DATA/tiny-midattn.fa";        one_error m_text "not a safetensors model file"

# --- export to the Hugging Face layout and back: identical tensors and config ----------------------------------
run export 0 $C --to hf mid.safetensors -o mid_hf
[ -s mid_hf/config.json ] && [ -s mid_hf/model.safetensors ] && ok || bad "export wrote no config.json/model.safetensors"
run back 0 $C mid_hf -o back.safetensors
run back_info 0 "$BIN" info -t back.safetensors;  run mid_info 0 "$BIN" info -t mid.safetensors
cmp -s back_info.out mid_info.out && ok || bad "round trip changed tensors"
run cfg_a 0 "$BIN" info -j mid.safetensors;  run cfg_b 0 "$BIN" info -j back.safetensors
[ "$(grep -A40 '"config"' cfg_a.out | sed '/}/q')" = "$(grep -A40 '"config"' cfg_b.out | sed '/}/q')" ] && ok || bad "round trip changed the config"

# --- dtypes ----------------------------------------------------------------------------------------------------
run bf16 0 $C --dtype bfloat16 "$CK/tiny-midattn.lightning.ckpt" -o bf16.safetensors
run bf16_info 0 "$BIN" info -t bf16.safetensors;  grep -q "BF16" bf16_info.out && ok || bad "--dtype bfloat16 not applied"
run nodir 1 $C "$CK/tiny-midattn.lightning.ckpt" -o no/such/dir/x.safetensors;   one_error nodir "no/such/dir"

finish convert
