// janusdna pretrain: train JanusDNA with the Janus objective on a genome; resumable; data-parallel via c10d.
#include "common.h"

#include "janusdna/error.h"
#include "janusdna/interrupt.h"
#include "janusdna/pretrain.h"
#include "janusdna/runtime.h"

#include <cmath>
#include <cstdlib>
#include <fmt/format.h>
#include <optional>
#include <string>

using namespace janusdna;

int main_pretrain(int argc, char** argv) {
    CLI::App app{"Pretrain JanusDNA on a genome with the Janus objective (every base predicted from both sides). "
                 "Checkpoints are atomic and --resume continues bit-identically; set RANK, WORLD_SIZE, MASTER_ADDR "
                 "and MASTER_PORT (as torchrun does) for data-parallel training.", "pretrain"};
    PretrainOptions p;
    TrainOptions& o = p.train;
    cli::CommonOptions common;
    cli::ReferenceOptions genome;
    cli::add_reference_options(app, genome, true);
    app.add_option("-o,--output", p.out_path, "final model file (.safetensors)")->required()->group("Output");
    auto* g_model = app.add_option_group("Model", "one of");
    g_model->add_option("--preset", p.preset, std::string("paper configuration: ") + ModelConfig::preset_names());
    g_model->add_option("--config", p.config_path, "model config JSON (reference field names)");
    g_model->add_option("-m,--model", p.init_model, "continue from the weights of this model file");
    g_model->require_option(0, 1);
    app.add_option("-R,--regions", p.regions, "train only in these BED intervals; a 4th column train/valid/test splits them")->group("Data");
    app.add_option("--valid-regions", p.valid_regions, "held-out validation regions (BED file or REGION), excluded from training")->group("Data");
    app.add_option("--test-regions", p.test_regions, "held-out test regions (BED file or REGION), excluded from training")->group("Data");
    app.add_option("--seq-len", o.seq_len, "window length")->group("Data");
    app.add_flag("--rc-aug", o.rc_aug, "reverse-complement windows at random")->group("Data");
    app.add_option("--max-n", o.max_n_fraction, "skip windows with a larger fraction of N")->group("Data");
    app.add_option("--seed", o.seed, "seed of every random choice")->group("Data");
    app.add_option("--steps", o.steps, "optimiser steps")->group("Optimisation");
    app.add_option("--batch", o.batch, "windows per micro-batch")->group("Optimisation");
    app.add_option("--tokens-per-step", o.tokens_per_step, "tokens per optimiser step, all ranks (gradient accumulation); 0 = one micro-batch per rank")->group("Optimisation");
    app.add_option("--lr", o.lr, "peak learning rate")->group("Optimisation");
    app.add_option("--min-lr", o.min_lr, "learning rate at the end of the cosine decay")->group("Optimisation");
    app.add_option("--warmup", o.warmup_fraction, "fraction of steps of linear warm-up")->group("Optimisation");
    app.add_option("--weight-decay", o.weight_decay, "AdamW weight decay (not on biases and the embedding)")->group("Optimisation");
    app.add_option("--clip", o.clip, "gradient-norm clipping (0 = off)")->group("Optimisation");
    app.add_option("--valid-every", o.valid_every, "validate every N steps (0 = only at the end)")->group("Validation and checkpoints");
    app.add_option("--valid-windows", o.valid_windows, "validation windows (a fixed set)")->group("Validation and checkpoints");
    app.add_option("--checkpoint-every", o.checkpoint_every, "checkpoint every N steps (0 = only at the end)")->group("Validation and checkpoints");
    app.add_option("--checkpoint", p.checkpoint_path, "checkpoint file [OUTPUT.ckpt]")->group("Validation and checkpoints");
    app.add_option("--resume", p.resume, "continue from this checkpoint")->group("Validation and checkpoints");
    app.add_flag("--keep-checkpoint", p.keep_checkpoint, "keep the checkpoint after a successful run (it is removed otherwise)")->group("Validation and checkpoints");
    app.add_option("--log", p.log_path, "training log, TSV [OUTPUT.log.tsv]")->group("Output");
    cli::add_common_options(app, common);
    app.footer("\nExamples:\n"
               "  janusdna pretrain --preset 32-midattn --steps 2000 --valid-regions 20:58,000,001-60,000,000 \\\n"
               "      --test-regions 20:60,000,001-63,025,520 -o model.safetensors 20.fa.gz\n"
               "  janusdna pretrain --resume model.safetensors.ckpt ...same options...\n"
               "  torchrun-style: RANK=0 WORLD_SIZE=2 MASTER_ADDR=host MASTER_PORT=29500 janusdna pretrain ...\n");
    if (int rc = cli::parse(app, argc, argv); rc >= 0) return rc;

    return cli::guarded("pretrain", [&]() -> int {
        cli::apply_common_options(common);
        const std::string cmd = "pretrain";
        // Everything that can fail cheaply fails now, before hours of work.
        for (const auto& path : {p.out_path, p.checkpoint(), p.log()}) cli::check_writable_dir(path);
        if (o.steps < 1 || o.batch < 1) throw Error("--steps and --batch must be at least 1");
        if (o.seq_len < cli::kMinWindow)
            throw Error(fmt::format("--seq-len {} is too short: at least {} bp are needed", o.seq_len, cli::kMinWindow));
        p.genome = genome.path();
        p.contigs = genome.contigs();
        p.command = cli::command_line(argc, argv);
        if (const char* crash = std::getenv("JANUSDNA_TEST_KILL_IN_CHECKPOINT")) // tests: die mid-write at this step
            p.test_crash_in_checkpoint = std::atoll(crash);

        std::optional<cli::Progress> progress;
        PretrainCallbacks cb;
        cb.warn = [&](const std::string& m) { cli::warn(cmd, m); };
        cb.on_checkpoint = [](const std::string& ckpt) {
            set_interrupt_hint(fmt::format("resume with: janusdna pretrain --resume {} and the same options", ckpt));
        };
        cb.on_start = [&](const PretrainStart& s) {
            if (s.rank == 0)
                fmt::print(stderr, "janusdna pretrain: {} in {}; {} validation and {} test windows; "
                                   "{} per step ({} of {} x {}) over {}; float32 (no bf16 "
                                   "autocast on this CPU build); threads {}; {}\n",
                           cli::plural(s.train_bases, "train base"), cli::plural(s.train_intervals, "interval"),
                           s.valid_windows, s.test_windows, cli::plural(s.tokens_per_step, "token"),
                           cli::plural(s.micro_batches, "micro-batch", "micro-batches"), o.batch, o.seq_len,
                           cli::plural(s.world, "rank"), compute_threads(),
                           s.resumed ? fmt::format("resuming at step {}", s.step) : "from scratch");
            progress.emplace("pretrain", "steps", o.steps, common.progress);
            progress->add(s.step);
        };
        cb.on_step = [&](const StepStats& st, double) {
            progress->add(1);
            if (st.step == o.steps) progress->finish();
        };
        const PretrainSummary r = pretrain(p, cb);
        if (progress) progress->finish();
        if (!r.lead) return 0;
        auto bits_text = [](const char* what, double x) {
            return std::isnan(x) ? fmt::format("no {} regions", what) : fmt::format("{} {:.4f} bits/base", what, x);
        };
        fmt::print(stderr, "janusdna pretrain: {}, {}; train loss {:.4f} nats; {}; {}; wrote {}\n",
                   cli::plural(r.steps, "step"), cli::plural(r.tokens, "token"), r.train_loss,
                   bits_text("validation", r.valid_bits), bits_text("test", r.test_bits), r.model_path);
        return 0;
    });
}
