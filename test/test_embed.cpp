// Unit tests of the embedding pipeline (embed.h), its writers (embed_writers.h) and the NPY format (npy.h).
#include <doctest/doctest.h>

#include <stdlib.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "helpers.h"
#include "tempdir.h"
#include "janusdna/embed.h"
#include "janusdna/embed_writers.h"
#include "janusdna/error.h"
#include "janusdna/fasta.h"
#include "janusdna/model_file.h"
#include "janusdna/npy.h"
#include "janusdna/safetensors.h"
#include "janusdna/tokenizer.h"
#include "janusdna/window_plan.h"

using namespace janusdna;

namespace {


// Collects everything in memory.
struct MemorySink : EmbedSink {
    int64_t H;
    explicit MemorySink(int64_t h) : H(h) {}
    std::vector<Region> regions;
    std::vector<std::vector<float>> per_base;    // [L * H] per region
    std::vector<std::vector<int64_t>> ids;
    std::vector<std::vector<float>> pooled_rows; // [H] per region
    std::vector<int64_t> n_scored;
    int64_t expect_next = 0;
    bool finished = false;
    void begin(const Region& r, int64_t length) override {
        CHECK(n_scored.size() == per_base.size()); // the previous region has ended
        regions.push_back(r);
        per_base.emplace_back();
        ids.emplace_back();
        expect_next = 0;
    }
    void rows(const Region&, int64_t first, const float* rows, const int64_t* id, int64_t n) override {
        CHECK(first == expect_next); // rows arrive in order, without gaps
        expect_next = first + n;
        per_base.back().insert(per_base.back().end(), rows, rows + n * H);
        ids.back().insert(ids.back().end(), id, id + n);
    }
    void end(const Region&, int64_t length, int64_t scored) override {
        CHECK(expect_next == length);
        n_scored.push_back(scored);
    }
    void pooled(const Region& r, const float* mean, int64_t, int64_t scored) override {
        regions.push_back(r);
        pooled_rows.emplace_back(mean, mean + H);
        n_scored.push_back(scored);
    }
    void finish() override { finished = true; }
    torch::Tensor tensor(size_t i) const {
        return torch::from_blob(const_cast<float*>(per_base[i].data()), {static_cast<int64_t>(per_base[i].size()) / H, H},
                                torch::kFloat).clone(); // [L, H]
    }
};

std::vector<FastaRecord> read_records(const std::string& path) {
    std::vector<FastaRecord> out;
    FastaReader r(path);
    FastaRecord rec;
    while (r.next(rec)) out.push_back(rec);
    return out;
}

// The hidden state of one direct forward pass over bases, [L, H].
torch::Tensor direct_hidden(JanusModelImpl& model, const std::string& bases) {
    Tokens tok = tokenize(bases, "test", "test");
    torch::Tensor ids = torch::from_blob(tok.ids.data(), {1, static_cast<int64_t>(tok.ids.size())}, torch::kLong).clone(); // [1, L]
    c10::InferenceMode guard;
    ForwardOptions fo;
    fo.logits = false;
    return model.forward(ids, fo).hidden[0].to(torch::kFloat).clone(); // [L, H]
}

double max_diff(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<double>(); }

LoadedModel& fixture_model() {
    static LoadedModel m = load_model(test::data("tiny-midattn.model.safetensors"));
    return m;
}

} // namespace

TEST_CASE("embed: --window 0, no flank: each fixture record equals the expected hidden and predict's forward pass") {
    for (const std::string name : {"tiny-midattn", "tiny-nomidattn"}) {
        LoadedModel m = load_model(test::data(name + ".model.safetensors"));
        SafetensorsFile expected = SafetensorsFile::open(test::data(name + ".expected.safetensors"));
        torch::Tensor hidden = test::read_tensor(expected, "hidden"); // [B, L, H]
        auto recs = read_records(test::data(name + ".fa"));
        REQUIRE(static_cast<int64_t>(recs.size()) == hidden.size(0));
        MemorySink sink(m.config.hidden_size);
        EmbedOptions opt;
        opt.window = 0;
        opt.flank = 0;
        opt.batch = 2;
        Embedder e(*m.model, opt, sink);
        for (auto& r : recs) e.add_sequence(r.name, r.seq, "fixture");
        e.finish();
        CHECK(sink.finished);
        REQUIRE(sink.per_base.size() == recs.size());
        for (size_t i = 0; i < recs.size(); ++i) {
            torch::Tensor got = sink.tensor(i);
            CHECK(max_diff(got, hidden[i]) <= 1e-4);
            CHECK(max_diff(got, direct_hidden(*m.model, recs[i].seq)) <= 1e-5);
            int64_t n_acgt = 0;
            for (char c : recs[i].seq) n_acgt += c != 'N';
            CHECK(sink.n_scored[i] == n_acgt);
        }
    }
}

TEST_CASE("embed: mean pooling excludes N; a region of only N gives NaN and a warning") {
    LoadedModel& m = fixture_model();
    const int64_t H = m.config.hidden_size;
    const std::string seq = "ACGTNNNNACGGTTACAGGATTACANNACG";
    MemorySink sink(H), per(H);
    EmbedOptions opt;
    opt.window = 0;
    opt.pool = Pooling::Mean;
    std::vector<std::string> warnings;
    Embedder e(*m.model, opt, sink, [&](const std::string& w) { warnings.push_back(w); });
    e.add_sequence("s", seq, "t");
    e.add_sequence("n", "NNNNNN", "t");
    e.finish();
    opt.pool = Pooling::None;
    Embedder e2(*m.model, opt, per);
    e2.add_sequence("s", seq, "t");
    e2.finish();
    torch::Tensor h = per.tensor(0); // [L, H]
    torch::Tensor mask = torch::tensor(std::vector<int64_t>(per.ids[0].begin(), per.ids[0].end())).ne(kPadId); // [L]
    torch::Tensor want = h.index({mask}).mean(0); // [H]
    torch::Tensor got = torch::from_blob(sink.pooled_rows[0].data(), {H}, torch::kFloat);
    CHECK(max_diff(got, want) <= 1e-6);
    CHECK(sink.n_scored[0] == 24);
    CHECK(sink.n_scored[1] == 0);
    for (float v : sink.pooled_rows[1]) CHECK(std::isnan(v));
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0].find("no A/C/G/T") != std::string::npos);
}

// The row of contig position pos from a direct pass over the grid window that owns it (reverse-complemented for
// strand '-').
torch::Tensor grid_row(JanusModelImpl& model, const Reference& ref, const std::string& contig, int64_t pos, int64_t W,
                       int64_t S, bool minus) {
    const Window w = grid_window(pos, ref.length(contig), W, S);
    const std::string seq = ref.fetch(contig, w.beg, w.end);
    if (!minus) return direct_hidden(model, seq)[pos - w.beg];                       // [H]
    return direct_hidden(model, reverse_complement(seq))[w.end - 1 - pos];            // [H]
}

TEST_CASE("embed: strand - equals embedding the reverse-complemented sequence") {
    LoadedModel& m = fixture_model();
    Reference ref = Reference::open(test::data("io/ref.fa"));
    {   // --window 0: one pass over the region, as a record of its reverse complement.
        MemorySink a(m.config.hidden_size), b(m.config.hidden_size);
        EmbedOptions opt;
        opt.window = 0;
        opt.flank = 0;
        Embedder ea(*m.model, opt, a), eb(*m.model, opt, b);
        ea.add(ref, Region{"20", 100, 250, "promoter", '-'});
        ea.finish();
        eb.add_sequence("rc", reverse_complement(ref.fetch("20", 100, 250)), "t");
        eb.finish();
        CHECK(max_diff(a.tensor(0), b.tensor(0)) == 0.0);
        CHECK(a.ids[0] == b.ids[0]);
    }
    {   // Tiled: row i is the reverse complement pass over the grid window owning base end - 1 - i.
        MemorySink a(m.config.hidden_size);
        EmbedOptions opt;
        opt.window = 64;
        opt.stride = 40;
        Embedder ea(*m.model, opt, a);
        ea.add(ref, Region{"20", 100, 250, "promoter", '-'});
        ea.finish();
        torch::Tensor got = a.tensor(0); // [150, H]
        REQUIRE(got.size(0) == 150);
        for (int64_t i : {0, 1, 37, 75, 149}) {
            CAPTURE(i);
            CHECK(max_diff(got[i], grid_row(*m.model, ref, "20", 249 - i, 64, 40, true)) <= 1e-5);
        }
    }
}

TEST_CASE("embed: per-base rows depend on the position only (region, batch, other regions, strand)") {
    LoadedModel& m = fixture_model();
    const int64_t H = m.config.hidden_size;
    Reference ref = Reference::open(test::data("embed/chr20_5k.fa"));
    for (bool rc : {false, true}) {
        CAPTURE(rc);
        EmbedOptions opt;
        opt.window = 256;
        opt.rc = rc;
        opt.batch = 8;
        MemorySink whole(H), parts(H);
        Embedder ew(*m.model, opt, whole);
        ew.add(ref, Region{"20", 100, 4900, "whole", '+'});
        ew.finish();
        EmbedOptions one = opt;
        one.batch = 1;
        Embedder ep(*m.model, one, parts);
        // Overlapping and out-of-order regions, one of a single base, one on the '-' strand.
        const std::vector<Region> regions = {{"20", 3000, 3001, "a", '+'}, {"20", 1000, 1700, "b", '+'},
                                             {"20", 1500, 2300, "c", '+'}, {"20", 4000, 4900, "d", '-'},
                                             {"20", 100, 101, "e", '+'}};
        for (const Region& r : regions) ep.add(ref, r);
        ep.finish();
        torch::Tensor w = whole.tensor(0); // [4800, H]
        for (size_t i = 0; i < regions.size(); ++i) {
            CAPTURE(i);
            torch::Tensor want = w.slice(0, regions[i].beg - 100, regions[i].end - 100); // [n, H]
            // With rc the '-' strand rows are the '+' rows reversed; without, they come from reverse-complement passes.
            if (regions[i].strand == '-') {
                if (!rc) continue;
                want = want.flip({0});
            }
            CHECK(max_diff(parts.tensor(i), want) == 0.0); // bit for bit
        }
    }
}

TEST_CASE("embed: tiling: rows equal a pass over the owning grid window") {
    LoadedModel& m = fixture_model();
    const int64_t H = m.config.hidden_size;
    SUBCASE("short region, contig shorter than the window: one pass over the contig") {
        Reference ref = Reference::open(test::data("io/ref.fa"));
        MemorySink a(H);
        EmbedOptions tiled;
        tiled.window = 4096;
        Embedder ea(*m.model, tiled, a);
        ea.add(ref, Region{"20", 500, 900, "r", '+'});
        ea.finish();
        CHECK(max_diff(a.tensor(0), direct_hidden(*m.model, ref.fetch("20", 0, ref.length("20"))).slice(0, 500, 900)) <= 1e-5);
    }
    SUBCASE("5,000 bases, window 512") {
        Reference ref = Reference::open(test::data("embed/chr20_5k.fa"));
        const int64_t beg = 100, end = 4900, W = 512, S = default_stride(W);
        MemorySink sink(H);
        EmbedOptions opt;
        opt.window = W;
        opt.batch = 4;
        Embedder e(*m.model, opt, sink);
        e.add(ref, Region{"20", beg, end, "long", '+'});
        e.finish();
        std::vector<Window> plan = plan_grid(beg, end, 5000, W, S);
        CHECK(e.passes() == static_cast<int64_t>((plan.size() + 3) / 4));
        torch::Tensor got = sink.tensor(0); // [4800, H]
        REQUIRE(got.size(0) == end - beg);
        REQUIRE(plan.size() >= 8);
        for (int64_t pos : {beg, beg + 1, int64_t(400), int64_t(1234), int64_t(2500), int64_t(3333), end - 2, end - 1}) {
            CAPTURE(pos);
            CHECK(max_diff(got[pos - beg], grid_row(*m.model, ref, "20", pos, W, S, false)) <= 1e-5);
        }
        CHECK(got.abs().sum(1).min().item<double>() > 0);
    }
}

TEST_CASE("embed: the default tiling: <= 1.35x work, per-base cosine vs a high-context tiling (real chr20, bundled model)") {
    // Against windows of 1,024 every 256 bases (each base has >= 384 bases of context on each side, 4x the work),
    // the default stride 3W/4 must keep the mean per-base cosine >= 0.999 and its 1st percentile >= 0.99.
    static LoadedModel m = load_model(test::bundled_model());
    const int64_t H = m.config.hidden_size, W = 1024;
    Reference ref = Reference::open(test::data("embed/chr20_40k.fa"));
    const int64_t len = ref.length("20"), beg = 2048, end = len - 2048; // away from the contig ends of the slice
    const auto rows = [&](int64_t stride, int64_t* passes) {
        MemorySink sink(H);
        EmbedOptions opt;
        opt.window = W;
        opt.stride = stride;
        opt.batch = 8;
        Embedder e(*m.model, opt, sink);
        e.add(ref, Region{"20", beg, end, "r", '+'});
        e.finish();
        *passes = static_cast<int64_t>(plan_grid(beg, end, len, W, stride == 0 ? default_stride(W) : stride).size());
        return sink.tensor(0); // [end - beg, H]
    };
    int64_t n_default = 0, n_ref = 0;
    const torch::Tensor a = rows(0, &n_default), b = rows(256, &n_ref);
    // Work per output base when the grid covers a whole contig (a genome): windows x W / bases. A region pays up
    // to one more window at each end.
    const double work = static_cast<double>(plan_grid(0, len, len, W, default_stride(W)).size() * W) / static_cast<double>(len);
    CHECK(n_default <= (end - beg) / default_stride(W) + 2);
    const torch::Tensor cos = torch::cosine_similarity(a.to(torch::kDouble), b.to(torch::kDouble), 1); // [end - beg]
    const torch::Tensor sorted = std::get<0>(cos.sort());
    const double mean = cos.mean().item<double>(), p1 = sorted[sorted.size(0) / 100].item<double>();
    MESSAGE("default tiling: " << work << "x work, cosine mean " << mean << ", 1st percentile " << p1
            << ", min " << sorted[0].item<double>());
    CHECK(work <= 1.35);
    CHECK(mean >= 0.999);
    CHECK(p1 >= 0.99);
    // Stride W (no overlap) is not good enough: the test can tell.
    int64_t n_none = 0;
    const torch::Tensor c = rows(W, &n_none);
    const torch::Tensor cos_none = std::get<0>(torch::cosine_similarity(c.to(torch::kDouble), b.to(torch::kDouble), 1).sort());
    MESSAGE("no overlap: cosine mean " << cos_none.mean().item<double>() << ", 1st percentile "
            << cos_none[cos_none.size(0) / 100].item<double>() << ", min " << cos_none[0].item<double>());
    CHECK(cos_none[cos_none.size(0) / 100].item<double>() < p1);
    // For the record (docs/PERFORMANCE.md): the old default, stride W/2 (2x the work).
    int64_t n_half = 0;
    const torch::Tensor h = rows(W / 2, &n_half);
    const torch::Tensor cos_half = std::get<0>(torch::cosine_similarity(h.to(torch::kDouble), b.to(torch::kDouble), 1).sort());
    MESSAGE("stride W/2: cosine mean " << cos_half.mean().item<double>() << ", 1st percentile "
            << cos_half[cos_half.size(0) / 100].item<double>() << ", min " << cos_half[0].item<double>());
}

TEST_CASE("embed: --rc averages the forward pass and the flipped reverse-complement pass") {
    LoadedModel& m = fixture_model();
    const std::string seq = "ACGTTGCANNGGATCCATTAGCAGTCAAGT";
    MemorySink both(m.config.hidden_size), both_rc(m.config.hidden_size);
    EmbedOptions opt;
    opt.window = 0;
    opt.rc = true;
    Embedder e(*m.model, opt, both), erc(*m.model, opt, both_rc);
    e.add_sequence("s", seq, "t");
    e.finish();
    erc.add_sequence("s", reverse_complement(seq), "t");
    erc.finish();
    torch::Tensor f = direct_hidden(*m.model, seq), r = direct_hidden(*m.model, reverse_complement(seq)); // [L, H]
    CHECK(max_diff(both.tensor(0), (f + r.flip({0})) * 0.5) <= 1e-5);
    // RC-averaged embeddings are strand-symmetric: embedding the other strand gives the same rows, reversed.
    CHECK(max_diff(both.tensor(0), both_rc.tensor(0).flip({0})) <= 1e-5);
}

TEST_CASE("embed: option and input errors") {
    LoadedModel& m = fixture_model();
    MemorySink sink(m.config.hidden_size);
    EmbedOptions opt;
    opt.window = 1;
    CHECK_THROWS_AS((Embedder{*m.model, opt, sink}), Error);
    opt.window = 16;
    opt.stride = 20;
    CHECK_THROWS_AS((Embedder{*m.model, opt, sink}), Error);
    opt.stride = 0;
    opt.flank = 0;
    Embedder e(*m.model, opt, sink);
    CHECK_THROWS_WITH_AS(e.add_sequence("one", "A", "x.fa"), doctest::Contains("at least 2"), Error);
    CHECK_THROWS_WITH_AS(e.add_sequence("empty", "", "x.fa"), doctest::Contains("empty"), Error);
}

TEST_CASE("npy: writer and reader round-trip (f32, f16, uint8 vector)") {
    test::TempDir tmp;
    std::vector<float> v = {0.f, 1.5f, -2.25f, 3.f, 1e-3f, 65504.f};
    {
        NpyWriter w(tmp.file("a.npy"), NpyType::F32, 3);
        w.append(v.data(), 1);
        w.append(v.data() + 3, 1);
        CHECK_FALSE(std::filesystem::exists(tmp.file("a.npy")));
        w.commit();
    }
    NpyArray a = read_npy(tmp.file("a.npy"));
    CHECK(a.descr == "<f4");
    CHECK(a.shape == std::vector<int64_t>{2, 3});
    CHECK(a.data == v);
    {
        NpyWriter w(tmp.file("h.npy"), NpyType::F16, 2);
        w.append(v.data(), 3);
        w.commit();
    }
    NpyArray h = read_npy(tmp.file("h.npy"));
    CHECK(h.shape == std::vector<int64_t>{3, 2});
    for (size_t i = 0; i < v.size(); ++i) CHECK(h.data[i] == doctest::Approx(v[i]).epsilon(1e-3));
    {
        NpyWriter w(tmp.file("u.npy"), NpyType::U8, 1, true);
        uint8_t b[] = {1, 0, 1};
        w.append_bytes(b, 3);
        w.commit();
    }
    NpyArray u = read_npy(tmp.file("u.npy"));
    CHECK(u.shape == std::vector<int64_t>{3});
    CHECK(u.data == std::vector<float>{1, 0, 1});
    // Header is 128 bytes, 64-aligned as numpy requires, ends with '\n'.
    std::ifstream in(tmp.file("a.npy"), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    CHECK(bytes.size() == 128 + 6 * 4);
    CHECK(bytes[127] == '\n');
    { NpyWriter w(tmp.file("gone.npy"), NpyType::F32, 2); } // never committed: nothing left
    CHECK_FALSE(std::filesystem::exists(tmp.file("gone.npy")));
    CHECK(std::distance(std::filesystem::directory_iterator(tmp.path), std::filesystem::directory_iterator()) == 3);
    CHECK_THROWS_AS((NpyWriter{"-", NpyType::F32, 2}), Error);
}

TEST_CASE("embed writers: NPY rows align with BED rows; safetensors round-trip") {
    LoadedModel& m = fixture_model();
    const int64_t H = m.config.hidden_size;
    Reference ref = Reference::open(test::data("io/ref.fa"));
    test::TempDir tmp;
    std::vector<Region> regions = {{"20", 0, 100, "a", '+'}, {"20", 100, 250, "promoter", '-'}, {"MT", 10, 20, "mt", '+'}};
    EmbedOptions opt;
    opt.window = 64;
    opt.flank = 8;
    MemorySink mem(H);
    {
        Embedder e(*m.model, opt, mem);
        for (auto& r : regions) e.add(ref, r);
        e.finish();
    }
    {
        PerBaseNpySink sink(tmp.file("pb"), NpyType::F32, H, {{"k", "v"}});
        Embedder e(*m.model, opt, sink);
        for (auto& r : regions) e.add(ref, r);
        e.finish();
    }
    NpyArray a = read_npy(tmp.file("pb.npy"));
    CHECK(a.shape == std::vector<int64_t>{260, H});
    NpyArray s = read_npy(tmp.file("pb.scored.npy"));
    CHECK(s.shape == std::vector<int64_t>{260});
    std::ifstream bed(tmp.file("pb.bed"));
    std::string line;
    size_t i = 0;
    while (std::getline(bed, line)) {
        std::istringstream f(line);
        std::string chrom, name, score, strand;
        int64_t beg, end, r0, r1;
        f >> chrom >> beg >> end >> name >> score >> strand >> r0 >> r1;
        REQUIRE(i < regions.size());
        CHECK(chrom == regions[i].contig);
        CHECK(beg == regions[i].beg);
        CHECK(end == regions[i].end);
        CHECK(name == regions[i].name);
        CHECK(strand[0] == regions[i].strand);
        CHECK(r1 - r0 == end - beg);
        torch::Tensor rows = torch::from_blob(a.data.data() + r0 * H, {r1 - r0, H}, torch::kFloat); // [L, H]
        CHECK(max_diff(rows, mem.tensor(i)) == 0.0);
        ++i;
    }
    CHECK(i == regions.size());
    std::ifstream js(tmp.file("pb.json"));
    nlohmann::json j = nlohmann::json::parse(js);
    CHECK(j["rows"] == 260);
    CHECK(j["k"] == "v");

    {
        PerBaseSafetensorsSink sink(tmp.file("pb.safetensors"), DType::F32, H, {{"janusdna_window", "64"}});
        Embedder e(*m.model, opt, sink);
        for (auto& r : regions) e.add(ref, r);
        e.finish();
    }
    SafetensorsFile st = SafetensorsFile::open(tmp.file("pb.safetensors"));
    CHECK(st.metadata().at("janusdna_window") == "64");
    for (size_t k = 0; k < regions.size(); ++k) {
        torch::Tensor t = test::read_tensor(st, regions[k].name); // [L, H]
        CHECK(max_diff(t, mem.tensor(k)) == 0.0);
        const TensorView* sc = st.find(regions[k].name + ".scored");
        REQUIRE(sc != nullptr);
        CHECK(sc->shape == std::vector<int64_t>{regions[k].end - regions[k].beg});
    }
    // Duplicate keys are refused.
    PerBaseSafetensorsSink dup(tmp.file("dup.safetensors"), DType::F16, H, {});
    Embedder e(*m.model, opt, dup);
    e.add(ref, regions[0]);
    CHECK_THROWS_WITH_AS((e.add(ref, regions[0]), e.finish()), doctest::Contains("unique"), Error);
}

TEST_CASE("embed: default window and flank") {
    CHECK(default_window({}) == 1024);
    CHECK(default_window({{"janusdna_train_seq_len", "131072"}}) == 131072);
    CHECK(default_window({{"janusdna_train_seq_len", "junk"}}) == 1024);
    CHECK(default_flank(1024, 1024) == 128);
    CHECK(default_flank(0, 4096) == 512);
    CHECK(default_stride(1024) == 768);
    CHECK(default_stride(1) == 1);
}
