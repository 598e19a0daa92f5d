// The pretraining driver at the library level: training intervals from BED files and region strings; a run stopped
// after a checkpoint and resumed from it ends with the weights and the log of an uninterrupted run (what
// test/cli/pretrain.sh checks through the command line, there after a SIGKILL); what the callbacks report; a resume
// with other training options refused.
#include "janusdna/fasta.h"
#include "janusdna/model_file.h"
#include "janusdna/pretrain.h"
#include "janusdna/train.h"

#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "helpers.h"
#include "tempdir.h"

using namespace janusdna;

namespace {

struct Stop {};  // thrown from on_step: the run ends there, as a crash after the step would end it

// The log's lines without tokens_per_s (column 7, a timing) and expert_load_max (column 9), as the CLI test compares.
std::vector<std::string> log_rows(const std::string& path) {
    std::ifstream in(path);
    std::vector<std::string> rows;
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream fields(line);
        std::string f, row;
        for (int col = 1; std::getline(fields, f, '\t'); ++col)
            if (col != 7 && col != 9) row += f + "\t";
        rows.push_back(row);
    }
    return rows;
}

bool exists(const std::string& path) { return std::filesystem::exists(path); }

} // namespace

TEST_CASE("read_intervals: a BED file with a split column, a region string, clipping and errors") {
    std::mt19937 rng(3);
    std::string seq;
    for (int i = 0; i < 500; ++i) seq += "ACGT"[rng() % 4];
    test::TempDir dir;
    Reference ref = Reference::open(dir.write("ref.fa", ">c1\n" + seq + "\n"));
    const std::string bed = dir.write("split.bed", "c1\t0\t100\ttrain\nc1\t100\t200\tvalid\nc1\t200\t300\ttest\n"
                                                   "c1\t300\t600\tother\n");
    std::vector<std::string> warnings;
    const WarnFn warn = [&](const std::string& m) { warnings.push_back(m); };
    const auto all = read_intervals(bed, ref, "", warn);
    REQUIRE(all.size() == 4);
    CHECK(all[0].split == "train");
    CHECK(all[1].split == "valid");
    CHECK(all[2].split == "test");
    CHECK(all[3].split == "train");  // any other name trains
    CHECK((all[3].beg == 300 && all[3].end == 500));  // clipped to the contig
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0].find("split.bed:4") != std::string::npos);
    for (const auto& iv : read_intervals(bed, ref, "valid")) CHECK(iv.split == "valid");  // a given split wins

    const auto one = read_intervals("c1:101-200", ref, "test", warn);  // no such file: a region string
    REQUIRE(one.size() == 1);
    CHECK((one[0].contig == "c1" && one[0].beg == 100 && one[0].end == 200 && one[0].split == "test"));
    CHECK(read_intervals("c1:101-200", ref, "", warn).at(0).split == "train");
    const auto clipped = read_intervals("c1:401-600", ref, "valid", warn).at(0);
    CHECK((clipped.beg == 400 && clipped.end == 500));
    REQUIRE(warnings.size() == 2);
    CHECK(warnings[1].find("c1:401-600") != std::string::npos);

    CHECK(test::error_of([&] { read_intervals(dir.write("bad.bed", "c2\t0\t10\n"), ref, "", warn); }).find("bad.bed:1") !=
          std::string::npos);
    CHECK(test::error_of([&] { read_intervals("c3:1-10", ref, "valid", warn); }) != "(no error)");
}

TEST_CASE("pretrain: stopped after a checkpoint and resumed, a run ends with the uninterrupted run's weights and log") {
    test::TempDir dir;
    PretrainOptions base;
    base.genome = test::data("train/chr20-40k.fa");
    base.config_path = test::data("train/tiny.config.json");
    base.valid_regions = {"20:35,001-40,000"};
    base.keep_checkpoint = true;
    base.command = "test";
    TrainOptions& t = base.train;
    t.seq_len = 64;
    t.batch = 2;
    t.steps = 6;
    t.checkpoint_every = 2;
    t.valid_every = 3;
    t.valid_windows = 4;
    t.lr = 5e-3;

    // Everything the callbacks report.
    struct Seen {
        std::vector<std::string> warnings, checkpoints;
        std::vector<int64_t> steps, validated;
        PretrainStart start;
        int starts = 0;
    };
    auto callbacks = [](Seen& seen, int64_t stop_after) {
        PretrainCallbacks cb;
        cb.warn = [&seen](const std::string& m) { seen.warnings.push_back(m); };
        cb.on_start = [&seen](const PretrainStart& s) { seen.start = s, ++seen.starts; };
        cb.on_step = [&seen, stop_after](const StepStats& st, double valid_bits) {
            seen.steps.push_back(st.step);
            if (!std::isnan(valid_bits)) seen.validated.push_back(st.step);
            if (st.step == stop_after) throw Stop{};
        };
        cb.on_checkpoint = [&seen](const std::string& path) { seen.checkpoints.push_back(path); };
        return cb;
    };

    // Uninterrupted.
    PretrainOptions a = base;
    a.out_path = dir.file("A.safetensors");
    Seen sa;
    const PretrainSummary ra = pretrain(a, callbacks(sa, 0));
    CHECK(sa.warnings.empty());
    CHECK(sa.starts == 1);
    CHECK_FALSE(sa.start.resumed);
    CHECK(sa.start.step == 0);
    CHECK(sa.start.train_intervals == 1);
    CHECK(sa.start.train_bases == 35000 - 64 + 1);  // window starts in 20:1-35,000
    CHECK(sa.start.valid_windows == 4);
    CHECK(sa.start.test_windows == 0);
    CHECK(sa.start.micro_batches == 1);
    CHECK(sa.start.tokens_per_step == 128);
    CHECK(sa.steps == std::vector<int64_t>{1, 2, 3, 4, 5, 6});
    CHECK(sa.validated == std::vector<int64_t>{3, 6});
    CHECK(sa.checkpoints == std::vector<std::string>(3, a.checkpoint()));  // steps 2, 4 and 6
    CHECK(ra.lead);
    CHECK(ra.steps == 6);
    CHECK(ra.tokens == 6 * 128);
    CHECK(std::isfinite(ra.train_loss));
    CHECK(std::isfinite(ra.valid_bits));
    CHECK(std::isnan(ra.test_bits));  // no test regions
    CHECK(ra.model_path == a.out_path);
    CHECK(exists(a.out_path));
    CHECK(exists(a.checkpoint()));  // kept
    CHECK(log_rows(a.log()).size() == 7);

    // Stopped after step 3: the step-2 checkpoint and three log lines remain, no model.
    PretrainOptions b = base;
    b.out_path = dir.file("B.safetensors");
    b.keep_checkpoint = false;
    Seen sb;
    CHECK_THROWS_AS(pretrain(b, callbacks(sb, 3)), Stop);
    CHECK_FALSE(exists(b.out_path));
    REQUIRE(exists(b.checkpoint()));
    CHECK(log_rows(b.log()).size() == 4);

    // Resumed: the log is cut back to step 2 and continued; the checkpoint is removed at the end.
    b.resume = b.checkpoint();
    Seen sc;
    const PretrainSummary rc = pretrain(b, callbacks(sc, 0));
    CHECK(sc.start.resumed);
    CHECK(sc.start.step == 2);
    CHECK(sc.steps == std::vector<int64_t>{3, 4, 5, 6});
    REQUIRE(!sc.checkpoints.empty());
    CHECK(sc.checkpoints.front() == b.resume);  // the loaded checkpoint is the one to resume from at once
    CHECK(rc.steps == 6);
    CHECK(rc.tokens == ra.tokens);
    CHECK(rc.train_loss == ra.train_loss);
    CHECK(rc.valid_bits == ra.valid_bits);
    CHECK(log_rows(b.log()) == log_rows(a.log()));
    CHECK_FALSE(exists(b.checkpoint()));

    const LoadedModel ma = load_model(a.out_path), mb = load_model(b.out_path);
    const auto pa = ma.model->named_parameters(), pb = mb.model->named_parameters();
    REQUIRE(pa.size() == pb.size());
    for (const auto& item : pa) {
        CAPTURE(item.key());
        CHECK(torch::equal(item.value(), pb[item.key()]));
    }
    const auto info = nlohmann::json::parse(mb.metadata.at("janusdna_training"));
    CHECK(info.at("steps") == 6);
    CHECK(info.at("command") == "test");
    CHECK(mb.metadata.at("janusdna_train_seq_len") == "64");

    // A checkpoint made with other training options is refused; valid_every and the like may change.
    PretrainOptions other = a;
    other.resume = a.checkpoint();
    other.out_path = dir.file("X.safetensors");
    other.train.lr = 1e-3;
    CHECK(test::error_of([&] { pretrain(other); }).find("other training options") != std::string::npos);
    CHECK_FALSE(exists(other.out_path));
}
