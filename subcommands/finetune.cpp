// janusdna finetune: the reference's sequence-classification protocol (pooling + linear head, whole model
// fine-tuned with AdamW, MoE aux loss kept; --rc for "w/ rc"; --freeze-backbone for a linear probe); --pooling
// picks the pooling (the mean over the real bases by default, the reference's over the padded input on request).
#include "common.h"
#include "dataset_args.h"

#include "janusdna/atomic_file.h"
#include "janusdna/classifier.h"
#include "janusdna/error.h"
#include "janusdna/interrupt.h"
#include "janusdna/model_file.h"
#include "janusdna/runtime.h"

#include <cmath>
#include <csignal>
#include <cstdlib>
#include <fmt/format.h>
#include <fstream>
#include <unistd.h>

using namespace janusdna;

int main_finetune(int argc, char** argv) {
    CLI::App app{"Fine-tune JanusDNA for sequence classification as the reference does: a pooled hidden state (by "
                 "default the mean over each sequence's own bases), a linear head, the whole model trained with AdamW (or "
                 "only the head with --freeze-backbone), the MoE auxiliary loss kept, the best epoch on validation kept. "
                 "Resumable.", "finetune"};
    cli::DatasetArgs data;
    FinetuneOptions o;
    std::string model_opt, out_path, ckpt_path, resume, log_path;
    bool keep_checkpoint = false;
    int64_t checkpoint_every = 0, max_length = 0;
    uint64_t seed = 1;
    cli::CommonOptions common;
    cli::add_dataset_options(app, data, false);
    app.add_option("-m,--model", model_opt, "pretrained model [default: $JANUSDNA_MODEL or the bundled model]")->group("Model");
    app.add_option("-o,--output", out_path, "fine-tuned model file (.safetensors)")->required()->group("Output");
    app.add_option("--log", log_path, "per-epoch log, TSV [OUTPUT.log.tsv]")->group("Output");
    app.add_option("--epochs", o.epochs, "epochs")->group("Optimisation");
    app.add_option("--batch", o.batch, "sequences per optimiser step")->group("Optimisation");
    app.add_option("--lr", o.lr, "peak learning rate")->group("Optimisation");
    app.add_option("--min-lr-ratio", o.min_lr_ratio, "final learning rate as a fraction of --lr (cosine decay)")->group("Optimisation");
    app.add_option("--warmup", o.warmup_fraction, "fraction of steps of linear warm-up")->group("Optimisation");
    app.add_option("--weight-decay", o.weight_decay, "AdamW weight decay (not on biases and the embedding)")->group("Optimisation");
    app.add_option("--clip", o.clip, "gradient-norm clipping (0 = off)")->group("Optimisation");
    app.add_option("--seed", seed, "seed of the head's initialisation, the data order and the reverse complements")->group("Optimisation");
    app.add_flag("--rc", o.rc, "train on random reverse complements and average both strands' logits when evaluating (\"w/ rc\")")->group("Protocol");
    app.add_flag("--freeze-backbone", o.freeze_backbone, "linear probe: train only the head on frozen pooled embeddings")->group("Protocol");
    app.add_option("--pooling", o.pooling, "mean (over the sequence's A/C/G/T, no padding), center (middle base), mean+max "
                                           "(2H features), or reference (mean over the left-padded input, padding included)")
        ->check(CLI::IsMember({"mean", "center", "mean+max", "reference"}))->capture_default_str()->group("Protocol");
    app.add_option("--max-length", max_length, "input length: longer sequences are cut; with --pooling reference shorter ones "
                                                "are left-padded to it [longest sequence]")->group("Protocol");
    app.add_option("--metric", o.metric, "validation metric that picks the best epoch")
        ->check(CLI::IsMember({"accuracy", "mcc", "f1", "auroc"}))->group("Protocol");
    app.add_option("--patience", o.patience, "stop after N epochs without a better validation metric (0 = run all)")->group("Protocol");
    app.add_option("--checkpoint", ckpt_path, "checkpoint file [OUTPUT.ckpt]")->group("Checkpoints");
    app.add_option("--checkpoint-every", checkpoint_every, "also checkpoint every N steps within an epoch (0 = at epoch ends)")->group("Checkpoints");
    app.add_option("--resume", resume, "continue from this checkpoint (same options)")->group("Checkpoints");
    app.add_flag("--keep-checkpoint", keep_checkpoint, "keep the checkpoint after a successful run (it is removed otherwise)")->group("Checkpoints");
    cli::add_common_options(app, common);
    app.footer("\nExamples:\n"
               "  janusdna finetune -o tata.safetensors --rc gue/prom/prom_300_tata\n"
               "  janusdna finetune --freeze-backbone -o probe.safetensors enhancers.train.tsv --test enhancers.test.tsv\n"
               "  for s in 1 2 3 4 5; do janusdna finetune --split-seed $s --seed $s -o cohn.$s.safetensors \\\n"
               "      human_enhancers_cohn.train.tsv --test human_enhancers_cohn.test.tsv; done\n"
               "  janusdna evaluate -m cohn.1.safetensors -m cohn.2.safetensors ... --plot cohn\n");
    if (int rc = cli::parse(app, argc, argv); rc >= 0) return rc;

    return cli::guarded("finetune", [&]() -> int {
        cli::apply_common_options(common);
        const std::string cmd = "finetune";
        if (ckpt_path.empty()) ckpt_path = out_path + ".ckpt";
        if (log_path.empty()) log_path = out_path + ".log.tsv";
        for (const auto& p : {out_path, ckpt_path, log_path}) cli::check_writable_dir(p);
        Dataset d = cli::load_split(data, {}, cli::warner(cmd, common));
        if (d.valid.empty()) throw Error(fmt::format("{}: no validation examples", data.data));
        int64_t longest = 0;
        for (const auto* split : {&d.train, &d.valid, &d.test})
            for (const auto& e : *split) longest = std::max<int64_t>(longest, static_cast<int64_t>(e.seq.size()));
        o.length = max_length > 0 ? max_length : longest;
        o.seed = seed;
        const std::string model_path = resolve_model_path(model_opt);
        LoadedModel m = load_model(model_path);
        if (is_classifier(m)) throw Error(fmt::format("{}: already fine-tuned; give a pretrained model", model_path));
        torch::manual_seed(seed);
        SequenceClassifier clf(m.model, static_cast<int64_t>(d.classes.size()), pooling_of(o.pooling));
        Finetuner ft(clf, o, sequences_of(d.train), labels_of(d.train), sequences_of(d.valid),
                     labels_of(d.valid), static_cast<int>(d.classes.size()));
        if (!resume.empty()) {
            const nlohmann::json was = ft.load_checkpoint(resume); // the checkpoint's "extra"
            set_interrupt_hint(fmt::format("resume with: janusdna finetune --resume {} and the same options", resume));
            if (!o.freeze_backbone && was.contains("threads") && was.at("threads") != compute_threads())
                fmt::print(stderr, "janusdna finetune: warning: {} was written with -@ {}, resuming with -@ {}: the run "
                                   "continues equal to float rounding, not bit-identically\n",
                           resume, was.at("threads").dump(), compute_threads());
        }
        if (common.verbosity > 0)
            fmt::print(stderr, "janusdna finetune: {}\njanusdna finetune: classes {}; train {}, validation {}, test {}; "
                               "length {}; {}, {} pooling{}\n", d.description, fmt::join(d.classes, ","), d.train.size(),
                       d.valid.size(), d.test.size(), o.length,
                       o.freeze_backbone ? "frozen backbone (linear probe)" : "full fine-tuning", o.pooling, o.rc ? ", w/ rc" : "");


        std::ofstream log(log_path, resume.empty() ? std::ios::trunc : std::ios::app);
        if (!log) throw Error(fmt::format("{}: cannot write the log", log_path));
        if (resume.empty()) log << "epoch\tstep\tlr\ttrain_loss\taux_loss\tvalid_loss\tvalid_" << o.metric << "\tseconds\tbest\n";
        const char* kill_hook = std::getenv("JANUSDNA_TEST_KILL_AFTER_CHECKPOINT"); // tests: die after this step's
        cli::Progress progress(cmd, "steps", ft.steps_per_epoch() * o.epochs, common.progress);
        progress.add(ft.step());
        const nlohmann::json extra = {{"data", data.to_json()}, {"threads", compute_threads()}};
        while (!ft.done()) {
            EpochStats st = ft.run_epoch([&] {
                progress.add(1);
                if (checkpoint_every > 0 && ft.step() % checkpoint_every == 0) {
                    ft.save_checkpoint(ckpt_path, extra);
                    set_interrupt_hint(fmt::format("resume with: janusdna finetune --resume {} and the same options", ckpt_path));
                    if (kill_hook && ft.step() == std::atoll(kill_hook)) raise(SIGKILL); // tests: a crash right after it
                }
                return true;
            });
            log << fmt::format("{}\t{}\t{:.6g}\t{:.6f}\t{:.6f}\t{:.6f}\t{:.6f}\t{:.1f}\t{}\n", st.epoch, st.step, st.lr,
                               st.train_loss, st.aux_loss, st.valid_loss, st.valid_metric, st.seconds, st.improved ? "*" : "");
            log.flush();
            if (!log) throw Error(fmt::format("{}: write error", log_path));
            ft.save_checkpoint(ckpt_path, extra);
            set_interrupt_hint(fmt::format("resume with: janusdna finetune --resume {} and the same options", ckpt_path));
            if (common.verbosity > 1)
                fmt::print(stderr, "janusdna finetune: epoch {}: train loss {:.4f}, validation {} {:.4f}{}\n", st.epoch,
                           st.train_loss, o.metric, st.valid_metric, st.improved ? " (best)" : "");
        }
        progress.finish();
        ft.restore_best();
        ClassifierInfo info;
        info.classes = d.classes;
        info.length = o.length;
        info.rc = o.rc;
        info.pooling = o.pooling;
        info.protocol = {{"dataset", data.to_json_for_model(out_path)}, {"options", o.to_json()}, {"backbone", model_path},
                         {"backbone_md5", m.md5}, {"train_examples", d.train.size()},
                         {"valid_examples", d.valid.size()}, {"best_epoch", ft.best_epoch()},
                         {"best_valid_" + o.metric, ft.best_metric()}, {"history", ft.history()},
                         {"command", cli::command_line(argc, argv)}};
        save_classifier(out_path, *clf, info);
        if (!keep_checkpoint) std::remove(ckpt_path.c_str());  // the model is complete; the checkpoint is only for resuming
        if (common.verbosity > 0)
            fmt::print(stderr, "janusdna finetune: {}, {}; best validation {} {:.4f} at epoch {}; wrote {}\n",
                       cli::plural(ft.epoch(), "epoch"), cli::plural(ft.step(), "step"), o.metric, ft.best_metric(), ft.best_epoch(), out_path);
        return 0;
    });
}
