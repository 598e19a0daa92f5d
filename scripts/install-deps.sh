#!/usr/bin/env bash
# Installs every Debian package that janusdna's build, tests and README examples need (Debian 12 "bookworm").
# Safe to re-run; installs only what is missing. Needs root (or sudo).
set -euo pipefail
packages=(
  cmake ninja-build g++ make pkg-config   # the build
  libtorch-dev                            # tensors, autograd, c10d (LibTorch 1.13)
  libopenblas0-pthread                    # fast BLAS for LibTorch's GEMMs (the reference BLAS is ~25x slower)
  libgloo-dev                             # headers for c10d's Gloo backend (distributed training on CPU)
  libhts-dev                              # htslib: FASTA/BED/VCF/BCF, bgzip, tabix, faidx
  libcli11-dev libfmt-dev nlohmann-json3-dev zlib1g-dev
  libbigwig-dev                           # bigWig tracks for genome browsers
  libyaml-cpp-dev                         # the reference's YAML model configs (janusdna convert --config)
  doctest-dev                             # unit tests
  samtools bcftools tabix bedtools        # CLI tests and README pipelines check interoperability with these
  python3                                 # CLI tests: its standard library reads safetensors and crafts checkpoints
  snakemake                               # workflow/Snakefile: genome-scale runs split into chunk jobs (laptop or
                                          # cluster), and its CLI test (test/cli/workflow.sh)
  python3-pybigwig                        # the workflow merges each track's chunks into one bigWig
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
