// janusdna pretrain: train JanusDNA with the Janus objective on a genome; resumable; data-parallel via c10d.
#include "common.h"

#include "janusdna/atomic_file.h"
#include "janusdna/error.h"
#include "janusdna/interrupt.h"
#include "janusdna/fasta.h"
#include "janusdna/model_file.h"
#include "janusdna/regions.h"
#include "janusdna/runtime.h"
#include "janusdna/train.h"

#include <chrono>
#include <csignal>
#include <fmt/format.h>
#include <fstream>
#include <unistd.h>

using namespace janusdna;

namespace {

// A BED file, or a region string such as 20:58,000,001-60,000,000.
std::vector<Interval> read_intervals(const std::string& spec, const Reference& ref, const std::string& split,
                                     const std::string& cmd) {
    std::vector<Interval> out;
    auto warn = [&](const std::string& m) { cli::warn(cmd, m); };
    if (access(spec.c_str(), R_OK) == 0 || spec == "-") {
        BedReader bed(spec);
        Region r;
        while (bed.next(r)) {
            check_region(r, ref, fmt::format("{}:{}", bed.display_name(), bed.line_number()), warn);
            // The reference's interval file says train/valid/test in its 4th column.
            std::string s = split;
            if (split.empty()) s = (r.name == "valid" || r.name == "test" || r.name == "train") ? r.name : "train";
            out.push_back({r.contig, r.beg, r.end, s});
        }
    } else {
        Region r = parse_region(spec, ref, warn);
        out.push_back({r.contig, r.beg, r.end, split.empty() ? "train" : split});
    }
    return out;
}

std::vector<Interval> of_split(const std::vector<Interval>& all, const std::string& split) {
    std::vector<Interval> out;
    for (const auto& iv : all)
        if (iv.split == split) out.push_back(iv);
    return out;
}

// Keeps the log's header and lines up to `step`, so a resumed run continues it without duplicates.
void trim_log(const std::string& path, int64_t step) {
    std::ifstream in(path);
    if (!in) return;
    std::string line, kept;
    while (std::getline(in, line)) {
        if (line.empty()) continue;
        if (line[0] == 's' || std::stoll(line.substr(0, line.find('\t'))) <= step) kept += line + "\n";
    }
    AtomicFile f(path);
    f.write(kept);
    f.commit();
}

} // namespace

int main_pretrain(int argc, char** argv) {
    CLI::App app{"Pretrain JanusDNA on a genome with the Janus objective (every base predicted from both sides). "
                 "Checkpoints are atomic and --resume continues bit-identically; set RANK, WORLD_SIZE, MASTER_ADDR "
                 "and MASTER_PORT (as torchrun does) for data-parallel training.", "pretrain"};
    bool keep_checkpoint = false;
    std::string genome, out_path, preset, config_path, init_model, regions_bed, resume, ckpt_path, log_path;
    std::vector<std::string> valid_specs, test_specs;
    TrainOptions o;
    cli::CommonOptions common;
    app.add_option("genome", genome, "indexed FASTA (plain or bgzipped)")->required()->group("Input");
    app.add_option("-o,--output", out_path, "final model file (.safetensors)")->required()->group("Output");
    auto* g_model = app.add_option_group("Model", "one of");
    g_model->add_option("--preset", preset, std::string("paper configuration: ") + ModelConfig::preset_names());
    g_model->add_option("--config", config_path, "model config JSON (reference field names)");
    g_model->add_option("-m,--model", init_model, "continue from the weights of this model file");
    g_model->require_option(0, 1);
    app.add_option("-R,--regions", regions_bed, "train only in these BED intervals; a 4th column train/valid/test splits them")->group("Data");
    app.add_option("--valid-regions", valid_specs, "held-out validation regions (BED file or REGION), excluded from training")->group("Data");
    app.add_option("--test-regions", test_specs, "held-out test regions (BED file or REGION), excluded from training")->group("Data");
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
    app.add_option("--checkpoint", ckpt_path, "checkpoint file [OUTPUT.ckpt]")->group("Validation and checkpoints");
    app.add_option("--resume", resume, "continue from this checkpoint")->group("Validation and checkpoints");
    app.add_flag("--keep-checkpoint", keep_checkpoint, "keep the checkpoint after a successful run (it is removed otherwise)")->group("Validation and checkpoints");
    app.add_option("--log", log_path, "training log, TSV [OUTPUT.log.tsv]")->group("Output");
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
        if (ckpt_path.empty()) ckpt_path = out_path + ".ckpt";
        if (log_path.empty()) log_path = out_path + ".log.tsv";
        // Everything that can fail cheaply fails now, before hours of work.
        for (const auto& p : {out_path, ckpt_path, log_path}) cli::check_writable_dir(p);
        if (o.steps < 1 || o.batch < 1) throw Error("--steps and --batch must be at least 1");
        if (o.seq_len < cli::kMinWindow)
            throw Error(fmt::format("--seq-len {} is too short: at least {} bp are needed", o.seq_len, cli::kMinWindow));
        std::unique_ptr<Communicator> comm = make_communicator();
        const bool lead = comm->rank() == 0;
        Reference ref = Reference::open(genome, [&](const std::string& m) { if (lead) cli::warn(cmd, m); });

        std::vector<Interval> all;
        if (!regions_bed.empty()) all = read_intervals(regions_bed, ref, "", cmd);
        else for (const auto& c : ref.contigs()) all.push_back({c, 0, ref.length(c), "train"});
        std::vector<Interval> valid = of_split(all, "valid"), test = of_split(all, "test");
        for (const auto& s : valid_specs) for (auto& iv : read_intervals(s, ref, "valid", cmd)) valid.push_back(iv);
        for (const auto& s : test_specs) for (auto& iv : read_intervals(s, ref, "test", cmd)) test.push_back(iv);
        std::vector<Interval> holes = valid;
        holes.insert(holes.end(), test.begin(), test.end());
        std::vector<Interval> train = subtract_intervals(of_split(all, "train"), holes);
        WindowSampler sampler(ref, train, o.seq_len, o.seed, o.max_n_fraction, o.rc_aug);
        auto valid_set = fixed_windows(ref, valid, o.seq_len, o.valid_windows, o.max_n_fraction);
        auto test_set = fixed_windows(ref, test, o.seq_len, o.valid_windows, o.max_n_fraction);
        if (!valid.empty() && valid_set.empty())
            throw Error(fmt::format("no validation window of {} bases with at most {:.0f}% N in the validation regions", o.seq_len, 100 * o.max_n_fraction));

        ModelConfig config;
        JanusModel model{nullptr};
        torch::manual_seed(o.seed);
        if (!init_model.empty()) {
            LoadedModel m = load_model(init_model);
            model = m.model;
            config = m.config;
        } else {
            if (!config_path.empty()) {
                std::ifstream in(config_path);
                if (!in) throw Error(fmt::format("{}: {}", config_path, std::strerror(errno)));
                nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
                if (j.is_discarded()) throw Error(fmt::format("{}: not valid JSON", config_path));
                config = ModelConfig::from_json(j, config_path);
            } else {
                config = ModelConfig::preset(preset.empty() ? "32-midattn" : preset);
            }
            model = JanusModel(config);
            model->init_weights();
        }
        Trainer trainer(model, o, *comm);
        if (!resume.empty()) {
            nlohmann::json state = trainer.load_checkpoint(resume);
            set_interrupt_hint(fmt::format("resume with: janusdna pretrain --resume {} and the same options", resume));
            nlohmann::json was = state.at("options"), now = o.to_json();
            for (const char* k : {"valid_every", "valid_windows", "checkpoint_every"}) { was.erase(k); now.erase(k); }
            if (was != now)
                throw Error(fmt::format("{}: checkpoint was made with other training options ({}); resume with the same ones",
                                        resume, was.dump()));
            if (lead) trim_log(log_path, trainer.step());
            const auto& extra = state.at("extra");
            if (lead && extra.contains("threads") && extra.at("threads") != compute_threads())
                fmt::print(stderr, "janusdna pretrain: warning: {} was written with -@ {}, resuming with -@ {}: the run "
                                   "continues equal to float rounding, not bit-identically\n",
                           resume, extra.at("threads").dump(), compute_threads());
        }
        const int64_t M = trainer.micro_batches_per_step();
        if (lead) {
            fmt::print(stderr, "janusdna pretrain: {} in {}; {} validation and {} test windows; "
                               "{} per step ({} of {} x {}) over {}; float32 (no bf16 "
                               "autocast on this CPU build); threads {}; {}\n",
                       cli::plural(sampler.total_bases(), "train base"), cli::plural(static_cast<int64_t>(train.size()), "interval"),
                       valid_set.size(), test_set.size(), cli::plural(M * o.batch * o.seq_len, "token"),
                       cli::plural(M, "micro-batch", "micro-batches"), o.batch, o.seq_len, cli::plural(comm->world(), "rank"), compute_threads(),
                       resume.empty() ? "from scratch" : fmt::format("resuming at step {}", trainer.step()));
        }
        std::unique_ptr<std::ofstream> log;
        if (lead) {
            const bool fresh = resume.empty();
            log = std::make_unique<std::ofstream>(log_path, fresh ? std::ios::trunc : std::ios::app);
            if (!*log) throw Error(fmt::format("{}: cannot write the log", log_path));
            if (fresh) *log << "step\ttokens\tlr\tloss\taux_loss\tgrad_norm\ttokens_per_s\tvalid_bits_per_base\texpert_load_max\n";
        }
        const char* crash_hook = std::getenv("JANUSDNA_TEST_KILL_IN_CHECKPOINT"); // tests: die mid-write at this step
        const auto t0 = std::chrono::steady_clock::now();
        cli::Progress progress("pretrain", "steps", o.steps, common.progress);
        progress.add(trainer.step());
        double last_valid = std::nan(""), last_loss = std::nan("");
        while (trainer.step() < o.steps) {
            StepStats st = trainer.train_step(sampler);
            last_loss = st.loss;
            const bool end = st.step == o.steps;
            double vbits = std::nan("");
            if (lead && (end || (o.valid_every > 0 && st.step % o.valid_every == 0))) vbits = last_valid = trainer.evaluate_bits(valid_set);
            if (lead) {
                *log << fmt::format("{}\t{}\t{:.6g}\t{:.6f}\t{:.6f}\t{:.4f}\t{:.0f}\t{}\t{:.3f}\n", st.step, st.tokens, st.lr,
                                    st.loss, st.aux_loss, st.grad_norm, st.tokens_per_second,
                                    std::isnan(vbits) ? "." : fmt::format("{:.4f}", vbits), fmt::join(st.expert_load_max, ","));
                log->flush();
                if (!*log) throw Error(fmt::format("{}: write error", log_path));
            }
            if (lead && (end || (o.checkpoint_every > 0 && st.step % o.checkpoint_every == 0))) {
                nlohmann::json extra = {{"genome", genome}, {"threads", compute_threads()}};
                if (crash_hook && std::to_string(st.step) == crash_hook) {
                    std::string bytes = trainer.checkpoint_writer(extra).to_bytes();
                    AtomicFile f(ckpt_path);
                    f.write(bytes.data(), bytes.size() / 2);
                    std::fflush(f.stream());
                    std::raise(SIGKILL);
                }
                trainer.save_checkpoint(ckpt_path, extra);
                set_interrupt_hint(fmt::format("resume with: janusdna pretrain --resume {} and the same options", ckpt_path));
            }
            progress.add(1);
        }
        progress.finish();
        if (!lead) return 0;
        const double test_bits = trainer.evaluate_bits(test_set);
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        auto bits_json = [](double x) { return std::isnan(x) ? nlohmann::json(nullptr) : nlohmann::json(x); };
        nlohmann::json info = {{"genome", genome}, {"train_intervals", train.size()}, {"train_bases", sampler.total_bases()},
                               {"steps", trainer.step()}, {"tokens", trainer.tokens()}, {"seed", o.seed},
                               {"final_train_loss_nats", last_loss}, {"valid_bits_per_base", bits_json(last_valid)},
                               {"test_bits_per_base", bits_json(test_bits)}, {"wall_seconds_this_run", secs},
                               {"ranks", comm->world()}, {"options", o.to_json()}, {"command", cli::command_line(argc, argv)}};
        save_model(out_path, *model, {{"janusdna_training", info.dump()}, {"janusdna_train_seq_len", std::to_string(o.seq_len)}});
        if (!keep_checkpoint) std::remove(ckpt_path.c_str());  // the model is complete; the checkpoint is only for resuming
        auto bits_text = [](const char* what, double x) {
            return std::isnan(x) ? fmt::format("no {} regions", what) : fmt::format("{} {:.4f} bits/base", what, x);
        };
        fmt::print(stderr, "janusdna pretrain: {}, {}; train loss {:.4f} nats; {}; {}; wrote {}\n",
                   cli::plural(trainer.step(), "step"), cli::plural(trainer.tokens(), "token"), last_loss, bits_text("validation", last_valid),
                   bits_text("test", test_bits), out_path);
        return 0;
    });
}
