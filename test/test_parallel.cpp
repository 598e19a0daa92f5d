// Coarse parallelism (parallel.h): the task runner, and that results do not depend on the thread count (the model's
// window/stream split in inference, the trainer's per-thread graphs in training).
#include <doctest/doctest.h>

#include "helpers.h"
#include "janusdna/model_file.h"
#include "janusdna/error.h"
#include "janusdna/fasta.h"
#include "janusdna/model.h"
#include "janusdna/ops.h"
#include "janusdna/optim.h"
#include "janusdna/parallel.h"
#include "janusdna/runtime.h"
#include "janusdna/train.h"
#include "janusdna/classifier.h"
#include "train/share_backward.h"

#include <atomic>
#include <random>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

using namespace janusdna;
using torch::Tensor;

namespace {
// Sets the compute threads for one scope and restores the tests' default (2) after.
struct Threads {
    explicit Threads(int n) { set_compute_threads(n); }
    ~Threads() { set_compute_threads(2); }
};
} // namespace

TEST_CASE("parallel_tasks: every task once, on up to N threads, nested calls serial, errors rethrown") {
    Threads t(2);
    std::vector<std::atomic<int>> runs(37);
    std::mutex m;
    std::set<std::thread::id> ids;
    parallel_tasks(37, [&](int64_t i) {
        runs[static_cast<size_t>(i)]++;
        std::lock_guard<std::mutex> lock(m);
        ids.insert(std::this_thread::get_id());
    });
    for (auto& r : runs) CHECK(r.load() == 1);
    CHECK(ids.size() <= 2);

    // Inside a task the width is 1 and nested calls run on the task's own thread.
    std::atomic<int> wrong{0};
    parallel_tasks(2, [&](int64_t) {
        if (parallel_width() != 1) ++wrong;
        const auto self = std::this_thread::get_id();
        parallel_tasks(3, [&](int64_t) {
            if (std::this_thread::get_id() != self) ++wrong;
        });
    });
    CHECK(wrong.load() == 0);
    CHECK(parallel_width() == 2);

    // The lowest-numbered failure is rethrown after every task has run.
    std::atomic<int> done{0};
    auto failing = [&](int64_t i) {
        ++done;
        if (i == 3 || i == 5) throw Error("task " + std::to_string(i));
    };
    CHECK_THROWS_WITH_AS(parallel_tasks(8, failing), "task 3", Error);
    CHECK(done.load() == 8);

    // parallel_for covers the range exactly once in contiguous parts.
    std::vector<int> hits(101, 0);
    parallel_for(0, 101, 10, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)]++;
    });
    for (int h : hits) CHECK(h == 1);
}

TEST_CASE("inference: results do not depend on the thread count (window split, streams as tasks)") {
    const ModelConfig c = test::tiny_config();
    torch::manual_seed(31);
    JanusModel m(c);
    m->init_weights();
    m->eval();
    const Tensor ids = test::random_ids(70, 5); // [5, 70]: an odd batch splits unevenly
    ForwardOptions o;
    o.streams = true;
    o.aux_loss = true;
    auto run = [&](int threads) {
        Threads t(threads);
        c10::InferenceMode guard;
        return m->forward(ids, o);
    };
    const ForwardOutput one = run(1), two = run(2);
    CHECK(torch::allclose(one.logits, two.logits, 1e-5, 1e-6));
    CHECK(torch::allclose(one.hidden, two.hidden, 1e-5, 1e-6));
    CHECK(torch::allclose(one.stream_bwd, two.stream_bwd, 1e-5, 1e-6));
    REQUIRE(one.router_fwd.size() == two.router_fwd.size());
    for (size_t i = 0; i < one.router_fwd.size(); ++i) {
        CHECK(torch::allclose(one.router_fwd[i].probs, two.router_fwd[i].probs, 1e-5, 1e-6));
        CHECK(torch::equal(one.router_fwd[i].chosen, two.router_fwd[i].chosen));
    }
    CHECK(std::abs(one.aux_loss.item<double>() - two.aux_loss.item<double>()) < 1e-6);
    // And batch 1 (streams as two tasks) equals the corresponding row of the batch.
    Threads t(2);
    c10::InferenceMode guard;
    CHECK(torch::allclose(m->forward(ids.narrow(0, 3, 1)).logits, one.logits.narrow(0, 3, 1), 1e-5, 1e-6));
}

TEST_CASE("inference: a window's output does not depend on the windows batched with it, bit for bit") {
    // What makes a score depend on the variant only (and a chunked genome equal one run): the same window gives the
    // same bits alone, at any place in a batch of any size, on 1 or 2 threads.
    const auto check = [](JanusModelImpl& m, int64_t L) {
        const Tensor ids = test::random_ids(L, 11); // [11, L]
        c10::InferenceMode guard;
        const ForwardOutput alone = m.forward(ids.narrow(0, 4, 1));
        for (int threads : {1, 2}) {
            Threads t(threads);
            for (int64_t first : {0, 1, 3, 4}) {
                for (int64_t n : {int64_t(1), int64_t(2), int64_t(5), 11 - first}) {
                    if (4 < first || 4 >= first + n) continue;
                    CAPTURE(threads); CAPTURE(first); CAPTURE(n);
                    const ForwardOutput y = m.forward(ids.narrow(0, first, n));
                    CHECK(torch::equal(y.hidden.narrow(0, 4 - first, 1), alone.hidden));
                    CHECK(torch::equal(y.logits.narrow(0, 4 - first, 1), alone.logits));
                }
            }
        }
    };
    SUBCASE("tiny config, odd length") {
        torch::manual_seed(32);
        JanusModel m(test::tiny_config());
        m->init_weights();
        m->eval();
        check(*m, 37);
    }
    SUBCASE("the test fixture model, windows of 128 and 256") {
        LoadedModel m = load_model(test::data("tiny-midattn.model.safetensors"));
        check(*m.model, 128);
        check(*m.model, 256);
    }
    SUBCASE("the bundled model, a 1,024-base window") {
        LoadedModel m = load_model(test::bundled_model());
        check(*m.model, 1024);
    }
}

TEST_CASE("training: one step gives the same weights on 1 and 2 threads (per-thread graphs, whole-batch aux loss)") {
    Reference ref = Reference::open(test::data("train/chr20-40k.fa"));
    std::vector<Interval> all;
    for (const auto& name : ref.contigs()) all.push_back({name, 0, ref.length(name), "train"});
    auto step = [&](int threads) {
        Threads t(threads);
        TrainOptions o;
        o.seq_len = 64;
        o.batch = 3; // split 1 + 2 over two threads
        o.steps = 10;
        o.tokens_per_step = 2 * o.batch * o.seq_len; // two micro-batches
        torch::manual_seed(7);
        JanusModel model(test::tiny_config());
        model->init_weights();
        auto comm = make_communicator();
        Trainer trainer(model, o, *comm);
        WindowSampler sampler(ref, all, o.seq_len, o.seed, o.max_n_fraction, false);
        const StepStats st = trainer.train_step(sampler);
        std::vector<Tensor> w;
        for (const auto& p : model->parameters()) w.push_back(p.detach().clone());
        return std::make_pair(st, w);
    };
    const auto [s1, w1] = step(1);
    const auto [s2, w2] = step(2);
    CHECK(s1.loss == doctest::Approx(s2.loss).epsilon(1e-6));
    CHECK(s1.aux_loss == doctest::Approx(s2.aux_loss).epsilon(1e-6));
    CHECK(s1.grad_norm == doctest::Approx(s2.grad_norm).epsilon(1e-5));
    REQUIRE(w1.size() == w2.size());
    double worst = 0;
    for (size_t i = 0; i < w1.size(); ++i) worst = std::max(worst, (w1[i] - w2[i]).abs().max().item<double>());
    MESSAGE("largest weight difference after one step, 1 vs 2 threads: " << worst);
    CHECK(worst < 1e-6);
}

TEST_CASE("fine-tuning: per-thread graphs give the single-graph gradient, and the same weights on 1 and 2 threads") {
    // Sequences with a planted class signal, as in test_finetune.cpp.
    std::mt19937 rng(5);
    std::vector<std::string> seqs;
    std::vector<int> labels;
    for (int i = 0; i < 10; ++i) {
        std::string s(32, 'A');
        for (auto& c : s) c = "ACGT"[rng() % 4];
        for (int j = 12; j < 20; ++j) s[j] = i % 2 ? 'G' : 'A';
        seqs.push_back(s), labels.push_back(i % 2);
    }
    auto classifier = [] {
        torch::manual_seed(9);
        JanusModel m(test::tiny_config());
        m->init_weights();
        return SequenceClassifier(m, 2, Pooling::Reference);
    };
    // The gradient of mean CE + aux: one graph on one thread, against share_backward over 2 threads (5 = 2 + 3).
    {
        SequenceClassifier a = classifier(), b = classifier();
        const Tensor ids = encode_sequences(seqs, 32, false), y = torch::tensor(std::vector<int64_t>(labels.begin(), labels.end()));
        {
            Threads t(1);
            Tensor aux;
            Tensor ce = torch::nn::functional::cross_entropy(a->classify(a->pool(ids, &aux)), y);
            (ce + aux).backward();
        }
        Threads t(2);
        namespace F = torch::nn::functional;
        train_detail::share_backward(*b->backbone, b->parameters(), ids.size(0), 1.0 / double(ids.size(0)), 1.0,
                                     [&](int64_t b0, int64_t b1) {
            ForwardOptions fo;
            fo.logits = false, fo.aux_loss = true;
            ForwardOutput out = b->backbone->forward(ids.narrow(0, b0, b1 - b0), fo);
            train_detail::ShareOutput sh;
            sh.loss = F::cross_entropy(b->classify(out.hidden.mean(1)), y.narrow(0, b0, b1 - b0),
                                       F::CrossEntropyFuncOptions().reduction(torch::kSum));
            sh.router_fwd = out.router_fwd, sh.router_bwd = out.router_bwd;
            return sh;
        });
        const auto pa = a->parameters(), pb = b->parameters();
        double worst = 0, scale = 0;
        for (size_t i = 0; i < pa.size(); ++i) {
            REQUIRE(pa[i].grad().defined() == pb[i].grad().defined()); // unused ones (lm_head, idle experts) in both
            if (!pa[i].grad().defined()) continue;
            worst = std::max(worst, (pa[i].grad() - pb[i].grad()).abs().max().item<double>());
            scale = std::max(scale, pa[i].grad().abs().max().item<double>());
        }
        MESSAGE("largest gradient difference, one graph vs two per-thread graphs: " << worst << " (scale " << scale << ")");
        CHECK(scale > 0);
        CHECK(worst <= 1e-5 * scale);
    }
    // A whole fine-tuning epoch: bit-identical when repeated on 2 threads (the shares and their summation order
    // are fixed by the thread count), and the same loss on 1 thread. (Weights agree only to ~1e-4 between thread
    // counts: Adam divides by the root of the squared gradient, which turns rounding-level differences in
    // near-zero gradients into steps of order lr.)
    // Both training paths: the reference's (one padded forward per share) and the others' (one forward per length
    // in a share; here the sequences are cut to lengths that differ).
    std::vector<std::string> varied = seqs;
    for (size_t i = 0; i < varied.size(); ++i) varied[i].resize(20 + 2 * (i % 4));
    for (Pooling pooling : {Pooling::Reference, Pooling::Mean}) {
        CAPTURE(pooling_name(pooling));
        auto epoch = [&](int threads) {
            Threads t(threads);
            torch::manual_seed(9);
            JanusModel m(test::tiny_config());
            m->init_weights();
            SequenceClassifier clf(m, 2, pooling);
            FinetuneOptions o;
            o.length = 32, o.batch = 5, o.epochs = 1, o.lr = 1e-2;
            o.pooling = pooling_name(pooling);
            Finetuner ft(clf, o, pooling == Pooling::Reference ? seqs : varied, labels, {}, {}, 2);
            const EpochStats st = ft.run_epoch();
            std::vector<Tensor> w;
            for (const auto& p : clf->parameters()) w.push_back(p.detach().clone());
            return std::make_pair(st.train_loss, w);
        };
        const auto [l1, w1] = epoch(1);
        const auto [l2, w2] = epoch(2);
        const auto [l2b, w2b] = epoch(2);
        CHECK(l1 == doctest::Approx(l2).epsilon(1e-6));
        CHECK(l2 == l2b);
        bool identical = true;
        for (size_t i = 0; i < w2.size(); ++i) identical = identical && torch::equal(w2[i], w2b[i]);
        CHECK(identical);
        double worst = 0;
        for (size_t i = 0; i < w1.size(); ++i) worst = std::max(worst, (w1[i] - w2[i]).abs().max().item<double>());
        MESSAGE("largest weight difference after a fine-tuning epoch, 1 vs 2 threads: " << worst);
        CHECK(worst < 1e-3);
    }
}

TEST_CASE("AdamW: the update split over threads equals the one-thread update, bit for bit") {
    torch::manual_seed(41);
    // Tensor sizes that are not multiples of 8, large enough (> 2^16 elements in all) to be split.
    const std::vector<int64_t> sizes = {70001, 13, 50003, 9};
    auto run = [&](int threads) {
        Threads t(threads);
        torch::manual_seed(41);
        std::vector<std::pair<std::string, Tensor>> named;
        std::vector<Tensor> grads;
        for (size_t i = 0; i < sizes.size(); ++i) {
            named.emplace_back("w" + std::to_string(i), torch::randn({sizes[i]}));
            grads.push_back(torch::randn({sizes[i]}));
        }
        AdamW adam(named, AdamWOptions{0.1, 0.9, 0.95, 1e-8, 1.0});
        for (int step = 1; step <= 3; ++step) adam.step(torch::cat(grads), 1e-2, step);
        return torch::cat(adam.params());
    };
    const Tensor one = run(1), two = run(2);
    CHECK(torch::equal(one, two));
    CHECK(one.numel() == 120026);
}

TEST_CASE("dense ops called on 2 threads equal 1 thread, bit for bit (the per-call packed weights reach every worker)") {
    torch::manual_seed(43);
    const int64_t T = 700, H = 32, I = 128, E = 4;
    const Tensor x = torch::randn({T, H}), w = torch::randn({40, H}), wt = torch::randn({H, 40});
    std::vector<Tensor> gates, ups, downs;
    for (int64_t e = 0; e < E; ++e) {
        gates.push_back(torch::randn({I, H}) / 6), ups.push_back(torch::randn({I, H}) / 6);
        downs.push_back(torch::randn({H, I}) / 11);
    }
    // Pairs grouped by expert: every token once per expert for the first two, a third of them for the others.
    std::vector<int64_t> tok, start{0};
    for (int64_t e = 0; e < E; ++e) {
        for (int64_t t = 0; t < T; t += (e < 2 ? 1 : 3)) tok.push_back(t);
        start.push_back(static_cast<int64_t>(tok.size()));
    }
    const Tensor token = torch::tensor(tok, torch::kLong), pw = torch::rand({int64_t(tok.size())});
    auto run = [&](int threads) {
        Threads th(threads);
        torch::NoGradGuard no_grad;
        return std::vector<Tensor>{ops::linear(x, w), ops::linear(x, wt.t()), ops::swiglu_mlp(x, gates[0], ups[0], downs[0]),
                                   ops::moe_experts(x, token, pw, start, gates, ups, downs)};
    };
    const auto one = run(1), two = run(2);
    for (size_t i = 0; i < one.size(); ++i) {
        CAPTURE(i);
        CHECK(torch::equal(one[i], two[i]));
    }
    CHECK(torch::allclose(one[1], torch::matmul(x, wt), 1e-4, 1e-4)); // the transposed view packed in place
}

TEST_CASE("share_backward: rows of different lengths (the non-reference poolings' training) give the one-graph gradient") {
    // Each sequence runs at its own length and pools over its bases; the load-balancing loss covers every token of
    // the batch. One graph on one thread against share_backward over 2 threads, whose shares hold unequal token
    // counts (the aux gradient must be split by tokens, not rows).
    std::mt19937 rng(8);
    std::vector<std::string> seqs;
    std::vector<int64_t> labels;
    for (int len : {9, 31, 14, 22, 5}) {
        std::string s(len, 'A');
        for (auto& c : s) c = "ACGT"[rng() % 4];
        seqs.push_back(s), labels.push_back(len % 2);
    }
    auto classifier = [] {
        torch::manual_seed(9);
        JanusModel m(test::tiny_config());
        m->init_weights();
        return SequenceClassifier(m, 2, Pooling::MeanMax);
    };
    namespace F = torch::nn::functional;
    const Tensor y = torch::tensor(labels);
    // Rows [b0, b1) one forward each: the CE sum and the routers' outputs, tokens concatenated per layer.
    auto rows = [&](SequenceClassifierImpl& c, int64_t b0, int64_t b1) {
        train_detail::ShareOutput sh;
        std::vector<std::vector<RouterOutput>> fwd, bwd;
        for (int64_t i = b0; i < b1; ++i) {
            const Tensor ids = encode_sequences({seqs[i]}, static_cast<int64_t>(seqs[i].size()), false); // [1, L]
            ForwardOptions fo;
            fo.logits = false, fo.aux_loss = true;
            ForwardOutput out = c.backbone->forward(ids, fo);
            Tensor loss = F::cross_entropy(c.classify(pool_hidden(out.hidden, ids, c.pooling)), y.narrow(0, i, 1),
                                           F::CrossEntropyFuncOptions().reduction(torch::kSum));
            sh.loss = sh.loss.defined() ? sh.loss + loss : loss;
            fwd.push_back(out.router_fwd), bwd.push_back(out.router_bwd);
        }
        for (auto [groups, dst] : {std::pair{&fwd, &sh.router_fwd}, std::pair{&bwd, &sh.router_bwd}})
            for (size_t layer = 0; layer < groups->front().size(); ++layer) {
                std::vector<Tensor> p, k;
                for (auto& g : *groups) p.push_back(g[layer].probs), k.push_back(g[layer].chosen);
                dst->push_back({torch::cat(p, 0), torch::cat(k, 0)});                          // [tokens, E], [tokens, k]
            }
        return sh;
    };
    SequenceClassifier a = classifier(), b = classifier();
    const int64_t n = static_cast<int64_t>(seqs.size());
    {
        Threads t(1);
        train_detail::ShareOutput all = rows(*a, 0, n);
        REQUIRE_FALSE(all.router_fwd.empty());
        const double coef = a->backbone->config.router_aux_loss_coef;
        Tensor aux = coef * (load_balancing_loss(all.router_fwd) + load_balancing_loss(all.router_bwd));
        (all.loss / double(n) + aux).backward();
    }
    Threads t(2);
    train_detail::share_backward(*b->backbone, b->parameters(), n, 1.0 / double(n), 1.0,
                                 [&](int64_t b0, int64_t b1) { return rows(*b, b0, b1); });
    const auto pa = a->parameters(), pb = b->parameters();
    double worst = 0, scale = 0;
    for (size_t i = 0; i < pa.size(); ++i) {
        REQUIRE(pa[i].grad().defined() == pb[i].grad().defined());
        if (!pa[i].grad().defined()) continue;
        worst = std::max(worst, (pa[i].grad() - pb[i].grad()).abs().max().item<double>());
        scale = std::max(scale, pa[i].grad().abs().max().item<double>());
    }
    MESSAGE("largest gradient difference, one graph vs two per-thread graphs, unequal lengths: " << worst << " (scale " << scale << ")");
    CHECK(scale > 0);
    CHECK(worst <= 1e-5 * scale);
}
