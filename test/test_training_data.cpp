// Training data: held-out regions never leak into training windows (subtract_intervals + WindowSampler, checked
// against brute force on random interval sets), the sampler's distribution over positions and strands, its
// determinism and --max-n, fixed_windows, and the pretraining learning-rate schedule at its boundary steps.
#include "janusdna/classifier.h"
#include "janusdna/fasta.h"
#include "janusdna/splitmix.h"
#include "janusdna/tokenizer.h"
#include "janusdna/train.h"

#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <random>
#include <set>

#include "helpers.h"
#include "tempdir.h"

using namespace janusdna;

namespace {

// Coverage of intervals as one bit per base, per contig.
using Cover = std::map<std::string, std::vector<bool>>;
Cover cover(const std::vector<Interval>& ivs, const std::map<std::string, int64_t>& lengths) {
    Cover c;
    for (const auto& [name, len] : lengths) c[name].assign(static_cast<size_t>(len), false);
    for (const Interval& iv : ivs)
        for (int64_t i = iv.beg; i < iv.end; ++i) c[iv.contig][static_cast<size_t>(i)] = true;
    return c;
}

std::vector<Interval> random_intervals(std::mt19937_64& rng, const std::map<std::string, int64_t>& lengths, int n,
                                       const std::string& split) {
    std::vector<Interval> out;
    for (int i = 0; i < n; ++i) {
        auto it = lengths.begin();
        std::advance(it, static_cast<long>(rng() % lengths.size()));
        const int64_t a = static_cast<int64_t>(rng() % static_cast<uint64_t>(it->second));
        const int64_t b = std::min<int64_t>(it->second, a + 1 + static_cast<int64_t>(rng() % 400));
        out.push_back({it->first, a, b, split});
    }
    return out;
}

// Token ids -> bases ([PAD] -> N).
std::string bases_of(const std::vector<int64_t>& ids) {
    std::string s;
    for (int64_t id : ids) s += id >= kIdA && id < kIdA + 4 ? "ACGT"[id - kIdA] : 'N';
    return s;
}

} // namespace

TEST_CASE("subtract_intervals equals a brute-force subtraction on random interval sets") {
    std::mt19937_64 rng(7);
    const std::map<std::string, int64_t> lengths{{"1", 1000}, {"2", 600}};
    for (int trial = 0; trial < 300; ++trial) {
        const auto ivs = random_intervals(rng, lengths, 1 + static_cast<int>(rng() % 6), "train");
        const auto holes = random_intervals(rng, lengths, static_cast<int>(rng() % 6), "valid");
        const auto out = subtract_intervals(ivs, holes);
        Cover want = cover(ivs, lengths), hole = cover(holes, lengths);
        for (auto& [c, bits] : want)
            for (size_t i = 0; i < bits.size(); ++i) bits[i] = bits[i] && !hole[c][i];
        CHECK(cover(out, lengths) == want);
        for (size_t i = 0; i < out.size(); ++i) {
            CHECK(out[i].beg < out[i].end);
            CHECK(out[i].split == "train");
            if (i) CHECK((out[i - 1].contig < out[i].contig || (out[i - 1].contig == out[i].contig && out[i - 1].beg <= out[i].beg)));
        }
    }
}

TEST_CASE("WindowSampler: no window overlaps a held-out region; positions, strands, determinism, --max-n") {
    // A random reference whose 48-mers are unique, so every window can be located.
    std::mt19937_64 rng(11);
    const std::map<std::string, int64_t> lengths{{"c1", 6000}, {"c2", 3000}};
    std::map<std::string, std::string> seq;
    std::string fasta;
    for (const auto& [name, len] : lengths) {
        for (int64_t i = 0; i < len; ++i) seq[name] += "ACGT"[rng() % 4];
        fasta += ">" + name + "\n" + seq[name] + "\n";
    }
    test::TempDir dir;
    const std::string path = dir.write("ref.fa", fasta);
    Reference ref = Reference::open(path);
    const int64_t L = 48;
    // Find a window: (contig, start, reverse strand) or nothing.
    auto locate = [&](const std::vector<int64_t>& ids, std::string& contig, int64_t& start, bool& rc) {
        const std::string s = bases_of(ids), r = reverse_complement(s);
        for (const auto& [name, text] : seq) {
            if (auto p = text.find(s); p != std::string::npos) { contig = name; start = static_cast<int64_t>(p); rc = false; return true; }
            if (auto p = text.find(r); p != std::string::npos) { contig = name; start = static_cast<int64_t>(p); rc = true; return true; }
        }
        return false;
    };

    for (int trial = 0; trial < 20; ++trial) {
        CAPTURE(trial);
        const auto train_in = random_intervals(rng, lengths, 3, "train");
        std::vector<Interval> holes = random_intervals(rng, lengths, 2, "valid");
        for (auto& t : random_intervals(rng, lengths, 2, "test")) holes.push_back(t);
        const auto train = subtract_intervals(train_in, holes);
        bool any = false;
        for (const auto& iv : train) any = any || iv.end - iv.beg >= L;
        if (!any) {
            CHECK_THROWS_AS(WindowSampler(ref, train, L, 5, 0.5, false), Error);
            continue;
        }
        WindowSampler s(ref, train, L, static_cast<uint64_t>(trial), 0.5, true);
        const Cover hole = cover(holes, lengths), allowed = cover(train, lengths);
        for (int64_t i = 0; i < 200; ++i) {
            std::string c;
            int64_t b = 0;
            bool rc = false;
            REQUIRE(locate(s.sample(i / 8, i % 8), c, b, rc));
            for (int64_t p = b; p < b + L; ++p) {
                CHECK_FALSE(hole.at(c)[static_cast<size_t>(p)]);  // never a base of a held-out region
                CHECK(allowed.at(c)[static_cast<size_t>(p)]);
            }
        }
    }

    // One interval: starts uniform over its beg .. end - L, strands half and half with --rc-aug, none without.
    const std::vector<Interval> one{{"c1", 1000, 5000, "train"}};
    WindowSampler fwd(ref, one, L, 3, 0.5, false), both(ref, one, L, 3, 0.5, true);
    const int64_t n_starts = 4000 - L + 1, draws = 4000;
    std::vector<int64_t> bins(8, 0);
    int64_t reverse = 0;
    for (int64_t i = 0; i < draws; ++i) {
        std::string c;
        int64_t b = 0;
        bool rc = false;
        REQUIRE(locate(fwd.sample(i, 0), c, b, rc));
        CHECK(c == "c1");
        CHECK_FALSE(rc);
        REQUIRE((b >= 1000 && b + L <= 5000));
        ++bins[static_cast<size_t>((b - 1000) * 8 / n_starts)];
        REQUIRE(locate(both.sample(i, 1), c, b, rc));
        reverse += rc;
    }
    // Each eighth holds 500 of 4,000 draws in expectation (sd ~21): within 5 sd.
    for (int64_t n : bins) CHECK(std::abs(n - draws / 8) < 105);
    CHECK(std::abs(reverse - draws / 2) < 160); // sd ~32
    // Deterministic in (seed, step, index); another seed draws other windows.
    WindowSampler again(ref, one, L, 3, 0.5, true), other(ref, one, L, 4, 0.5, true);
    int same = 0;
    for (int64_t i = 0; i < 50; ++i) {
        CHECK(again.sample(i, 2) == both.sample(i, 2));
        same += other.sample(i, 2) == both.sample(i, 2);
    }
    CHECK(same < 3);
}

TEST_CASE("WindowSampler --max-n and fixed_windows") {
    // c1: 200 bases, then 100 N, then 200 bases.
    std::mt19937_64 rng(5);
    std::string s;
    for (int i = 0; i < 500; ++i) s += i >= 200 && i < 300 ? 'N' : "ACGT"[rng() % 4];
    test::TempDir dir;
    Reference ref = Reference::open(dir.write("n.fa", ">c1\n" + s + "\n"));
    const std::vector<Interval> all{{"c1", 0, 500, "train"}};
    const int64_t L = 50;
    for (double max_n : {0.0, 0.2, 1.0}) {
        CAPTURE(max_n);
        WindowSampler w(ref, all, L, 9, max_n, false);
        bool saw_n = false;
        for (int64_t i = 0; i < 400; ++i) {
            const auto ids = w.sample(i, 0);
            const int64_t n = std::count(ids.begin(), ids.end(), kPadId);
            CHECK(static_cast<double>(n) / L <= max_n);
            saw_n = saw_n || n > 0;
        }
        CHECK(saw_n == (max_n > 0)); // with any allowance some windows overlap the N run
    }
    // Non-overlapping tiles from each interval's start; mostly-N ones skipped; at most max_windows.
    const auto tiles = fixed_windows(ref, {{"c1", 10, 500, "valid"}}, L, 100, 0.5);
    // tiles at 10, 60, ..., 410: those at 210 and 260 are all N (skipped), 160 and 260.. partly
    std::vector<std::string> want;
    for (int64_t b = 10; b + L <= 500; b += L) {
        const std::string w = s.substr(static_cast<size_t>(b), static_cast<size_t>(L));
        if (std::count(w.begin(), w.end(), 'N') <= L / 2) want.push_back(w);
    }
    REQUIRE(tiles.size() == want.size());
    for (size_t i = 0; i < want.size(); ++i) CHECK(bases_of(tiles[i]) == want[i]);
    CHECK(fixed_windows(ref, {{"c1", 10, 500, "valid"}}, L, 3, 0.5).size() == 3);
}

TEST_CASE("pretraining learning rate: warm-up from 1e-6, cosine to min_lr, at the boundary steps") {
    TrainOptions o;
    o.steps = 200;
    o.warmup_fraction = 0.1;  // 20 warm-up steps
    o.lr = 8e-3;
    o.min_lr = 1e-4;
    auto comm = make_communicator();
    Trainer t(JanusModel(test::tiny_config()), o, *comm);
    CHECK(t.lr_at(0) == doctest::Approx(1e-6));
    CHECK(t.lr_at(10) == doctest::Approx(1e-6 + (8e-3 - 1e-6) * 0.5));
    CHECK(t.lr_at(19) == doctest::Approx(1e-6 + (8e-3 - 1e-6) * 19 / 20));
    CHECK(t.lr_at(20) == doctest::Approx(8e-3));                                  // peak at the end of warm-up
    CHECK(t.lr_at(110) == doctest::Approx(1e-4 + 0.5 * (8e-3 - 1e-4)));          // half-way down the cosine
    CHECK(t.lr_at(65) == doctest::Approx(1e-4 + 0.5 * (8e-3 - 1e-4) * (1 + std::cos(M_PI * 0.25))));
    CHECK(t.lr_at(200) == doctest::Approx(1e-4));                                 // floor at the last step
    CHECK(t.lr_at(250) == doctest::Approx(1e-4));                                 // and after
    for (int64_t s = 21; s < 200; ++s) CHECK(t.lr_at(s) <= t.lr_at(s - 1));      // decreasing after warm-up
}

TEST_CASE("fine-tuning learning rate: warm-up from 1e-6, cosine to min_lr_ratio * lr, at the boundary steps") {
    // 40 training sequences in batches of 8: 5 steps per epoch, 20 epochs = 100 steps, 10 of them warm-up.
    std::vector<std::string> tr(40, std::string(24, 'A'));
    std::vector<int> ytr(40);
    for (int i = 0; i < 40; ++i) ytr[i] = i % 2;
    FinetuneOptions o;
    o.length = 24;
    o.batch = 8;
    o.epochs = 20;
    o.lr = 1e-3;
    o.min_lr_ratio = 0.1;
    o.warmup_fraction = 0.1;
    torch::manual_seed(1);
    JanusModel m(test::tiny_config());
    Finetuner ft(SequenceClassifier(m, 2), o, tr, ytr, {}, {}, 2);
    REQUIRE(ft.steps_per_epoch() == 5);
    const double lr = 1e-3, floor = 1e-4;
    CHECK(ft.lr_at(0) == doctest::Approx(1e-6));
    CHECK(ft.lr_at(5) == doctest::Approx(1e-6 + (lr - 1e-6) * 0.5));
    CHECK(ft.lr_at(9) == doctest::Approx(1e-6 + (lr - 1e-6) * 0.9));
    CHECK(ft.lr_at(10) == doctest::Approx(lr));                                            // peak after warm-up
    CHECK(ft.lr_at(55) == doctest::Approx(floor + 0.5 * (lr - floor)));                   // half-way
    CHECK(ft.lr_at(32) == doctest::Approx(floor + 0.5 * (lr - floor) * (1 + std::cos(M_PI * 22.0 / 90))));
    CHECK(ft.lr_at(100) == doctest::Approx(floor));                                        // the last step
    CHECK(ft.lr_at(130) == doctest::Approx(floor));
    for (int64_t s = 11; s <= 100; ++s) CHECK(ft.lr_at(s) <= ft.lr_at(s - 1));
}
