// The pretraining driver: data, the step loop, validation, the log, checkpoints and resume, the final model.
#include "janusdna/pretrain.h"

#include "janusdna/atomic_file.h"
#include "janusdna/error.h"
#include "janusdna/fasta.h"
#include "janusdna/model_file.h"
#include "janusdna/runtime.h"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fmt/format.h>
#include <fstream>
#include <memory>
#include <torch/utils.h>

namespace janusdna {

namespace {

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

ModelConfig read_config(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw Error(fmt::format("{}: {}", path, std::strerror(errno)));
    nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
    if (j.is_discarded()) throw Error(fmt::format("{}: not valid JSON", path));
    return ModelConfig::from_json(j, path);
}

} // namespace

PretrainSummary pretrain(const PretrainOptions& o, const PretrainCallbacks& cb) {
    const TrainOptions& t = o.train;
    if (t.steps < 1 || t.batch < 1) throw Error("--steps and --batch must be at least 1");
    const std::string ckpt_path = o.checkpoint(), log_path = o.log();
    std::unique_ptr<Communicator> comm = make_communicator();
    const bool lead = comm->rank() == 0;
    const WarnFn warn = [&](const std::string& m) { if (lead && cb.warn) cb.warn(m); };
    Reference ref = Reference::open(o.genome, warn);

    std::vector<Interval> all;
    if (!o.regions.empty()) all = read_intervals(o.regions, ref, "", warn, o.contigs);
    else for (const auto& c : ref.contigs()) all.push_back({c, 0, ref.length(c), "train"});
    std::vector<Interval> valid = of_split(all, "valid"), test = of_split(all, "test");
    for (const auto& s : o.valid_regions) for (auto& iv : read_intervals(s, ref, "valid", warn, o.contigs)) valid.push_back(iv);
    for (const auto& s : o.test_regions) for (auto& iv : read_intervals(s, ref, "test", warn, o.contigs)) test.push_back(iv);
    std::vector<Interval> holes = valid;
    holes.insert(holes.end(), test.begin(), test.end());
    const std::vector<Interval> train = subtract_intervals(of_split(all, "train"), holes);
    WindowSampler sampler(ref, train, t.seq_len, t.seed, t.max_n_fraction, t.rc_aug);
    const auto valid_set = fixed_windows(ref, valid, t.seq_len, t.valid_windows, t.max_n_fraction);
    const auto test_set = fixed_windows(ref, test, t.seq_len, t.valid_windows, t.max_n_fraction);
    if (!valid.empty() && valid_set.empty())
        throw Error(fmt::format("no validation window of {} bases with at most {:.0f}% N in the validation regions",
                                t.seq_len, 100 * t.max_n_fraction));

    JanusModel model{nullptr};
    torch::manual_seed(t.seed);
    if (!o.init_model.empty()) {
        model = load_model(o.init_model).model;
    } else {
        const ModelConfig config = !o.config_path.empty() ? read_config(o.config_path)
                                                          : ModelConfig::preset(o.preset.empty() ? "32-midattn" : o.preset);
        model = JanusModel(config);
        model->init_weights();
    }
    Trainer trainer(model, t, *comm);
    if (!o.resume.empty()) {
        nlohmann::json state = trainer.load_checkpoint(o.resume);
        if (cb.on_checkpoint) cb.on_checkpoint(o.resume);
        nlohmann::json was = state.at("options"), now = t.to_json();
        for (const char* k : {"valid_every", "valid_windows", "checkpoint_every"}) { was.erase(k); now.erase(k); }
        if (was != now)
            throw Error(fmt::format("{}: checkpoint was made with other training options ({}); resume with the same ones",
                                    o.resume, was.dump()));
        if (lead) trim_log(log_path, trainer.step());
        const auto& extra = state.at("extra");
        if (extra.contains("threads") && extra.at("threads") != compute_threads())
            warn(fmt::format("{} was written with -@ {}, resuming with -@ {}: the run continues equal to float "
                             "rounding, not bit-identically", o.resume, extra.at("threads").dump(), compute_threads()));
    }
    PretrainStart start;
    start.rank = comm->rank();
    start.world = comm->world();
    start.train_bases = sampler.total_bases();
    start.train_intervals = static_cast<int64_t>(train.size());
    start.valid_windows = static_cast<int64_t>(valid_set.size());
    start.test_windows = static_cast<int64_t>(test_set.size());
    start.micro_batches = trainer.micro_batches_per_step();
    start.tokens_per_step = start.micro_batches * t.batch * t.seq_len;
    start.step = trainer.step();
    start.resumed = !o.resume.empty();
    if (cb.on_start) cb.on_start(start);

    std::unique_ptr<std::ofstream> log;
    if (lead) {
        const bool fresh = o.resume.empty();
        log = std::make_unique<std::ofstream>(log_path, fresh ? std::ios::trunc : std::ios::app);
        if (!*log) throw Error(fmt::format("{}: cannot write the log", log_path));
        if (fresh) *log << "step\ttokens\tlr\tloss\taux_loss\tgrad_norm\ttokens_per_s\tvalid_bits_per_base\texpert_load_max\n";
    }
    const auto t0 = std::chrono::steady_clock::now();
    PretrainSummary sum;
    sum.lead = lead;
    sum.train_intervals = start.train_intervals;
    sum.train_bases = start.train_bases;
    sum.model_path = o.out_path;
    sum.checkpoint_path = ckpt_path;
    sum.log_path = log_path;
    while (trainer.step() < t.steps) {
        const StepStats st = trainer.train_step(sampler);
        sum.train_loss = st.loss;
        const bool end = st.step == t.steps;
        double vbits = std::nan("");
        if (lead && (end || (t.valid_every > 0 && st.step % t.valid_every == 0)))
            vbits = sum.valid_bits = trainer.evaluate_bits(valid_set);
        if (lead) {
            *log << fmt::format("{}\t{}\t{:.6g}\t{:.6f}\t{:.6f}\t{:.4f}\t{:.0f}\t{}\t{:.3f}\n", st.step, st.tokens, st.lr,
                                st.loss, st.aux_loss, st.grad_norm, st.tokens_per_second,
                                std::isnan(vbits) ? "." : fmt::format("{:.4f}", vbits), fmt::join(st.expert_load_max, ","));
            log->flush();
            if (!*log) throw Error(fmt::format("{}: write error", log_path));
        }
        if (lead && (end || (t.checkpoint_every > 0 && st.step % t.checkpoint_every == 0))) {
            nlohmann::json extra = {{"genome", o.genome}, {"threads", compute_threads()}};
            if (o.test_crash_in_checkpoint > 0 && st.step == o.test_crash_in_checkpoint) {
                std::string bytes = trainer.checkpoint_writer(extra).to_bytes();
                AtomicFile f(ckpt_path);
                f.write(bytes.data(), bytes.size() / 2);
                std::fflush(f.stream());
                std::raise(SIGKILL);
            }
            trainer.save_checkpoint(ckpt_path, extra);
            if (cb.on_checkpoint) cb.on_checkpoint(ckpt_path);
        }
        if (cb.on_step) cb.on_step(st, vbits);
    }
    sum.steps = trainer.step();
    sum.tokens = trainer.tokens();
    if (!lead) return sum;
    sum.test_bits = trainer.evaluate_bits(test_set);
    sum.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    auto bits_json = [](double x) { return std::isnan(x) ? nlohmann::json(nullptr) : nlohmann::json(x); };
    nlohmann::json info = {{"genome", o.genome}, {"train_intervals", train.size()}, {"train_bases", sampler.total_bases()},
                           {"steps", trainer.step()}, {"tokens", trainer.tokens()}, {"seed", t.seed},
                           {"final_train_loss_nats", sum.train_loss}, {"valid_bits_per_base", bits_json(sum.valid_bits)},
                           {"test_bits_per_base", bits_json(sum.test_bits)}, {"wall_seconds_this_run", sum.seconds},
                           {"ranks", comm->world()}, {"options", t.to_json()}, {"command", o.command}};
    save_model(o.out_path, *model, {{"janusdna_training", info.dump()}, {"janusdna_train_seq_len", std::to_string(t.seq_len)}});
    if (!o.keep_checkpoint) std::remove(ckpt_path.c_str());  // the model is complete; the checkpoint is only for resuming
    return sum;
}

} // namespace janusdna
