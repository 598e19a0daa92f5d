// The pretraining driver behind `janusdna pretrain`: training, validation and test intervals -> window samplers,
// the step loop around Trainer, validation, the TSV log, checkpoints and exact resume, the final model file.
// It prints nothing: warnings, the run's shape, each step and each checkpoint reach the caller through callbacks,
// and the totals come back in a PretrainSummary. Data-parallel over the ranks make_communicator() finds.
#pragma once
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "janusdna/error.h"
#include "janusdna/train.h"

namespace janusdna {

struct PretrainOptions {
    std::string genome;                   // indexed FASTA (plain or bgzipped)
    std::string out_path;                 // the final model file (.safetensors)
    std::string checkpoint_path;          // "" = out_path + ".ckpt"
    std::string log_path;                 // training log, TSV; "" = out_path + ".log.tsv"
    std::string resume;                   // continue from this checkpoint ("" = from scratch)
    bool keep_checkpoint = false;         // else the checkpoint is removed once the model is written
    // The model: the weights of init_model if given, else the config JSON config_path, else the preset ("" = 32-midattn).
    std::string init_model, config_path, preset;
    // Training intervals: regions (a BED file, whose 4th column may say train/valid/test, or a region string; ""
    // = every contig), less the held-out valid_regions and test_regions (each a BED file or a region string).
    std::string regions;
    std::vector<std::string> valid_regions, test_regions;
    ContigMatcher contigs;                // the regions' contig names -> the genome's (--chr-prefix, --rename-chrs)
    TrainOptions train;
    std::string command;                  // recorded in the model's training metadata ("janusdna pretrain ...")
    // Tests only: at this checkpoint step (0 = never), write half of the checkpoint's temporary file and SIGKILL
    // the process, as a crash in the middle of a checkpoint write would.
    int64_t test_crash_in_checkpoint = 0;

    std::string checkpoint() const { return checkpoint_path.empty() ? out_path + ".ckpt" : checkpoint_path; }
    std::string log() const { return log_path.empty() ? out_path + ".log.tsv" : log_path; }
};

// What a run starts from: the data, the step's shape and the step it continues at.
struct PretrainStart {
    int rank = 0, world = 1;
    int64_t train_bases = 0;              // window starts in the training intervals (WindowSampler::total_bases)
    int64_t train_intervals = 0;          // after the held-out regions were subtracted
    int64_t valid_windows = 0, test_windows = 0;
    int64_t micro_batches = 1;            // per optimiser step, all ranks together
    int64_t tokens_per_step = 0;          // micro_batches * batch * seq_len
    int64_t step = 0;                     // 0 from scratch, else the resumed checkpoint's step
    bool resumed = false;
};

struct PretrainCallbacks {
    // Warnings (a reference index being built, a region clipped, a resume with another thread count); rank 0 only.
    WarnFn warn;
    // Once the data, the model and a resumed checkpoint are ready, before the first step; on every rank.
    std::function<void(const PretrainStart&)> on_start;
    // After each optimiser step (logged, and checkpointed when due); on every rank. valid_bits is the validation
    // result of this step on rank 0 where one was due, else NaN. An exception thrown here ends the run, leaving
    // the last checkpoint and the log as they are.
    std::function<void(const StepStats&, double valid_bits)> on_step;
    // Whenever `path` becomes the checkpoint a run can be resumed from: after the resumed checkpoint was loaded
    // (every rank) and after each checkpoint written (rank 0).
    std::function<void(const std::string& path)> on_checkpoint;
};

struct PretrainSummary {
    bool lead = true;                     // rank 0; the other ranks evaluate and write nothing at the end
    int64_t steps = 0, tokens = 0;        // totals of the run, a resumed run's earlier part included
    int64_t train_intervals = 0, train_bases = 0;
    double train_loss = std::nan("");     // the last step's loss, nats (NaN when no step ran in this process)
    double valid_bits = std::nan("");     // the last validation, bits per base (NaN without validation regions)
    double test_bits = std::nan("");      // at the end, bits per base (NaN without test regions)
    double seconds = 0;                   // wall time of the step loop and the end of this process's run
    std::string model_path, checkpoint_path, log_path;
};

// Runs pretraining to o.train.steps: from scratch (the log is rewritten) or from o.resume (the checkpoint must have
// been made with the same model configuration and training options other than valid_every, valid_windows and
// checkpoint_every; the log is cut back to its step and continued), so that a resumed run ends with the weights of
// an uninterrupted one. Rank 0 validates every valid_every steps and at the end, appends one line per step to the
// log, checkpoints every checkpoint_every steps and at the end (atomically), evaluates the test windows and writes
// the model with its training metadata, then removes the checkpoint unless keep_checkpoint.
// Throws Error for unreadable inputs, a bad region, no training window, no validation window in validation regions
// that were given, a checkpoint of another configuration or options, and write errors.
PretrainSummary pretrain(const PretrainOptions& o, const PretrainCallbacks& cb = {});

} // namespace janusdna
