// Unit tests for sequence classification: tokenisation with left padding, the poolings (the reference's over the
// padding; the others invariant to it), learning a planted signal, the strand symmetry of "w/ rc", frozen
// backbones, model-file round trips (old files read as the reference's pooling) and bit-identical resume.
#include <doctest/doctest.h>

#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include <torch/nn/functional/loss.h>

#include "helpers.h"
#include "janusdna/classifier.h"
#include "janusdna/error.h"
#include "janusdna/model_file.h"
#include "janusdna/safetensors.h"
#include "janusdna/tokenizer.h"

using namespace janusdna;

namespace {

std::string random_dna(std::mt19937& rng, int n) {
    std::string s(n, 'A');
    for (auto& c : s) c = "ACGT"[rng() % 4];
    return s;
}

// Class 1 carries a run of G's in the middle, class 0 a run of A's; the background is random.
void planted(int n, int len, uint32_t seed, std::vector<std::string>& seqs, std::vector<int>& labels) {
    std::mt19937 rng(seed);
    for (int i = 0; i < n; ++i) {
        std::string s = random_dna(rng, len);
        const int y = i % 2;
        for (int j = len / 2 - 4; j < len / 2 + 4; ++j) s[j] = y ? 'G' : 'A';
        seqs.push_back(s);
        labels.push_back(y);
    }
}

SequenceClassifier tiny_classifier(int64_t classes = 2, uint64_t seed = 3, Pooling pooling = Pooling::Mean) {
    torch::manual_seed(seed);
    JanusModel m(test::tiny_config());
    m->init_weights();
    return SequenceClassifier(m, classes, pooling);
}

const std::vector<Pooling> kAllPoolings = {Pooling::Reference, Pooling::Mean, Pooling::Center, Pooling::MeanMax};

bool same_weights(SequenceClassifierImpl& a, SequenceClassifierImpl& b) {
    auto pa = a.parameters(), pb = b.parameters();
    for (size_t i = 0; i < pa.size(); ++i)
        if (!torch::equal(pa[i], pb[i])) return false;
    return true;
}

} // namespace

TEST_CASE("encode_sequences: ids, N as [PAD], left padding, cut to length, reverse complement") {
    torch::Tensor ids = encode_sequences({"ACGTN", "GG", "ACGTACGT"}, 6, false);             // [3, 6]
    CHECK(ids.sizes().vec() == std::vector<int64_t>{3, 6});
    CHECK(torch::equal(ids[0], torch::tensor({kPadId, kIdA, kIdC, kIdG, kIdT, kPadId})));
    CHECK(torch::equal(ids[1], torch::tensor({kPadId, kPadId, kPadId, kPadId, kIdG, kIdG})));
    CHECK(torch::equal(ids[2], torch::tensor({kIdA, kIdC, kIdG, kIdT, kIdA, kIdC})));       // first 6 kept
    torch::Tensor rc = encode_sequences({"AACG"}, 5, true);
    CHECK(torch::equal(rc[0], torch::tensor({kPadId, kIdC, kIdG, kIdT, kIdT})));             // CGTT, padded left
}

TEST_CASE("reference pooling is the mean of the hidden state over every position, padding included") {
    SequenceClassifier clf = tiny_classifier(2, 3, Pooling::Reference);
    clf->eval();
    torch::NoGradGuard ng;
    torch::Tensor ids = encode_sequences({"ACGTAC", "GGT"}, 8, false);                      // [2, 8]
    ForwardOptions fo;
    fo.logits = false;
    torch::Tensor h = clf->backbone->forward(ids, fo).hidden;                                 // [2, 8, H]
    CHECK(torch::allclose(clf->pool(ids), h.mean(1)));
    CHECK(clf->classify(clf->pool(ids)).sizes().vec() == std::vector<int64_t>{2, 2});
}

TEST_CASE("pool_hidden: the mean and maximum leave out [PAD] (N) positions; center is position L / 2") {
    torch::manual_seed(1);
    torch::Tensor h = torch::randn({3, 5, 4});                                                // [B, L, H]
    torch::Tensor ids = torch::tensor({kIdA, kPadId, kIdC, kIdG, kPadId, kIdT, kIdT, kIdT, kIdT, kIdT,
                                       kPadId, kPadId, kPadId, kPadId, kPadId}).view({3, 5});  // [B, L]
    torch::Tensor mean = pool_hidden(h, ids, Pooling::Mean);                                  // [3, 4]
    CHECK(torch::allclose(mean[0], (h[0][0] + h[0][2] + h[0][3]) / 3));
    CHECK(torch::allclose(mean[1], h[1].mean(0)));
    CHECK(torch::equal(mean[2], torch::zeros({4})));  // no A/C/G/T: zeros
    torch::Tensor mm = pool_hidden(h, ids, Pooling::MeanMax);                                 // [3, 8]
    CHECK(mm.sizes().vec() == std::vector<int64_t>{3, 8});
    CHECK(torch::equal(mm.narrow(1, 0, 4), mean));
    CHECK(torch::equal(mm[0].narrow(0, 4, 4), torch::stack({h[0][0], h[0][2], h[0][3]}).amax(0)));
    CHECK(torch::equal(mm[1].narrow(0, 4, 4), h[1].amax(0)));
    CHECK(torch::equal(mm[2].narrow(0, 4, 4), torch::zeros({4})));
    CHECK(torch::equal(pool_hidden(h, ids, Pooling::Center), h.select(1, 2)));
    CHECK(torch::equal(pool_hidden(h, ids, Pooling::Reference), h.mean(1)));
    CHECK(pooling_of("mean+max") == Pooling::MeanMax);
    CHECK(pooling_name(Pooling::Center) == "center");
    CHECK_THROWS_WITH_AS(pooling_of("max"), doctest::Contains("unknown pooling \"max\""), Error);
}

TEST_CASE("length_groups: indices by run length, shortest first; one-base sequences run at length 2") {
    auto g = length_groups({"ACGTA", "AC", "ACGTACGTAA", "A", "GGTTC", "ACGTACGTACGT"}, 10);
    REQUIRE(g.size() == 3);
    CHECK(g[0] == std::vector<int64_t>{1, 3});     // 2 bases, and 1 base run at 2
    CHECK(g[1] == std::vector<int64_t>{0, 4});
    CHECK(g[2] == std::vector<int64_t>{2, 5});     // 10, and 12 cut to the input length 10
    CHECK(run_length(1, 10) == 2);
}

TEST_CASE("a short sequence's pooled features and logits do not depend on the padding or its batch, except under "
          "reference pooling") {
    std::mt19937 rng(11);
    const std::string shorty = random_dna(rng, 12);
    std::vector<std::string> mixed = {random_dna(rng, 40), shorty, random_dna(rng, 25), random_dna(rng, 33)};
    for (Pooling p : kAllPoolings) {
        CAPTURE(pooling_name(p));
        SequenceClassifier clf = tiny_classifier(2, 3, p);
        clf->eval();
        // Alone at input length 12 (no padding at all), then batched with longer sequences at input lengths 40
        // and 64 (28 and 52 positions of left padding under the reference's pooling).
        torch::Tensor alone = pooled_features(*clf, {shorty}, 12, false, 8);                 // [1, F]
        torch::Tensor in40 = pooled_features(*clf, mixed, 40, false, 8);                      // [4, F]
        torch::Tensor in64 = pooled_features(*clf, mixed, 64, false, 3);                      // [4, F]
        CHECK(alone.size(1) == pooled_width(p, 8));
        const bool same = torch::allclose(alone[0], in40[1], 1e-5, 1e-6) && torch::allclose(alone[0], in64[1], 1e-5, 1e-6);
        torch::Tensor p_alone = predict_proba(*clf, {shorty}, 12, true, 8);                    // [1, 2]
        torch::Tensor p_mixed = predict_proba(*clf, mixed, 64, true, 2);                       // [4, 2]
        const bool same_p = torch::allclose(p_alone[0], p_mixed[1], 1e-5, 1e-6);
        if (p == Pooling::Reference) {
            CHECK_FALSE(same);   // the padding dominates the short sequence's mean: the problem the others solve
            CHECK_FALSE(same_p);
        } else {
            CHECK(same);
            CHECK(same_p);
            torch::NoGradGuard ng;
            CHECK(torch::allclose(clf->classify(alone)[0], clf->classify(in64)[1], 1e-5, 1e-6));
        }
    }
}

TEST_CASE("full fine-tuning: with the non-reference poolings no padding reaches the model or the gradient") {
    // The same run with input lengths 32 and 80, past the longest sequence (30): the reference's pooling pads
    // to each and trains differently; the others run every sequence at its own length and train identically.
    std::mt19937 rng(4);
    std::vector<std::string> tr, va;
    std::vector<int> ytr, yva;
    for (int i = 0; i < 12; ++i) tr.push_back(random_dna(rng, 6 + 2 * i)), ytr.push_back(i % 2);
    for (int i = 0; i < 4; ++i) va.push_back(random_dna(rng, 10 + i)), yva.push_back(i % 2);
    for (Pooling p : {Pooling::Reference, Pooling::Mean, Pooling::MeanMax}) {
        CAPTURE(pooling_name(p));
        std::vector<SequenceClassifier> runs;
        for (int64_t length : {32, 80}) {
            runs.push_back(tiny_classifier(2, 3, p));
            FinetuneOptions o;
            o.length = length;
            o.batch = 6;
            o.epochs = 1;
            o.rc = true;
            o.pooling = pooling_name(p);
            Finetuner ft(runs.back(), o, tr, ytr, va, yva, 2);
            while (!ft.done()) ft.run_epoch();
        }
        CHECK(same_weights(*runs[0], *runs[1]) == (p != Pooling::Reference));
    }
}

TEST_CASE("w/ rc: strand-averaged probabilities are the same for a sequence and its reverse complement") {
    for (Pooling p : kAllPoolings) {
        CAPTURE(pooling_name(p));
        SequenceClassifier clf = tiny_classifier(3, 3, p);
        std::mt19937 rng(5);
        std::vector<std::string> seqs, rcs;
        for (int i = 0; i < 6; ++i) {
            seqs.push_back(random_dna(rng, 20 + i));
            rcs.push_back(reverse_complement(seqs.back()));
        }
        torch::Tensor a = predict_proba(*clf, seqs, 32, true, 4), b = predict_proba(*clf, rcs, 32, true, 4);  // [6, 3]
        CHECK(torch::allclose(a, b, 1e-5, 1e-6));
        CHECK(torch::allclose(a.sum(1), torch::ones({6}), 1e-5, 1e-6));
        // One strand alone is not symmetric: the test above would pass trivially otherwise.
        torch::Tensor a1 = predict_proba(*clf, seqs, 32, false, 4), b1 = predict_proba(*clf, rcs, 32, false, 4);
        CHECK_FALSE(torch::allclose(a1, b1, 1e-5, 1e-6));
    }
}

TEST_CASE("fine-tuning learns a planted signal; the linear probe leaves the backbone untouched") {
    std::vector<std::string> tr, va;
    std::vector<int> ytr, yva;
    planted(64, 24, 1, tr, ytr);
    planted(32, 24, 2, va, yva);
    for (bool freeze : {false, true}) {
        CAPTURE(freeze);
        SequenceClassifier clf = tiny_classifier();
        std::vector<torch::Tensor> before;
        for (const auto& p : clf->backbone->parameters()) before.push_back(p.detach().clone());
        FinetuneOptions o;
        o.length = 24;
        o.batch = 16;
        o.epochs = freeze ? 30 : 12;
        o.lr = freeze ? 3e-2 : 1e-2;
        o.freeze_backbone = freeze;
        Finetuner ft(clf, o, tr, ytr, va, yva, 2);
        double first = 0;
        while (!ft.done()) {
            EpochStats st = ft.run_epoch();
            if (st.epoch == 1) first = st.train_loss;
        }
        ft.restore_best();
        CHECK(ft.best_metric() >= 0.9);
        CHECK(ft.history().back()["train_loss"].get<double>() < first);
        auto after = clf->backbone->parameters();
        bool unchanged = true;
        for (size_t i = 0; i < after.size(); ++i) unchanged = unchanged && torch::equal(before[i], after[i]);
        CHECK(unchanged == freeze);
    }
}

TEST_CASE("linear probe: validation on cached pooled features equals a full predict_proba pass") {
    std::vector<std::string> tr, va;
    std::vector<int> ytr, yva;
    planted(24, 20, 7, tr, ytr);
    planted(10, 20, 8, va, yva);
    va[3].resize(9), va[6].resize(15);  // lengths that differ
    for (bool rc : {false, true})
    for (Pooling pool : kAllPoolings) {
        CAPTURE(rc);
        CAPTURE(pooling_name(pool));
        SequenceClassifier clf = tiny_classifier(2, 3, pool);
        FinetuneOptions o;
        o.length = 24;
        o.batch = 8;
        o.epochs = 2;
        o.freeze_backbone = true;
        o.rc = rc;
        o.pooling = pooling_name(pool);
        Finetuner ft(clf, o, tr, ytr, va, yva, 2);
        while (!ft.done()) ft.run_epoch();
        torch::Tensor p = predict_proba(*clf, va, 24, rc, 3);                                  // [10, 2]
        std::vector<int64_t> y(yva.begin(), yva.end());
        const double loss = torch::nn::functional::nll_loss(p.clamp_min(1e-12).log(), torch::tensor(y)).item<double>();
        CHECK(ft.history().back()["valid_loss"].get<double>() == doctest::Approx(loss).epsilon(1e-5));
    }
}

TEST_CASE("a fine-tuned model file round-trips: same probabilities, classes and protocol; bad heads are refused") {
    SequenceClassifier clf = tiny_classifier(3);
    const std::string path = "/tmp/janusdna_test_clf.safetensors";
    ClassifierInfo info;
    info.classes = {"enhancer", "ocr", "promoter"};
    info.length = 16;
    info.rc = true;
    info.protocol = {{"seed", 7}};
    save_classifier(path, *clf, info);
    LoadedModel m = load_model(path);
    REQUIRE(is_classifier(m));
    LoadedClassifier lc = classifier_of(m);
    CHECK(lc.info.classes == info.classes);
    CHECK(lc.info.length == 16);
    CHECK(lc.info.rc);
    CHECK(lc.info.protocol["seed"] == 7);
    std::vector<std::string> seqs = {"ACGTACGTAC", "GGGGTTTTAACC"};
    CHECK(torch::allclose(predict_proba(*clf, seqs, 16, true, 2), predict_proba(*lc.clf, seqs, 16, true, 2)));

    // Every pooling round-trips; mean+max has a [C, 2H] head.
    for (Pooling p : kAllPoolings) {
        CAPTURE(pooling_name(p));
        SequenceClassifier c = tiny_classifier(2, 5, p);
        ClassifierInfo pi;
        pi.classes = {"a", "b"};
        pi.length = 16;
        pi.pooling = pooling_name(p);
        save_classifier(path, *c, pi);
        LoadedClassifier back = classifier_of(load_model(path));
        CHECK(back.info.pooling == pooling_name(p));
        CHECK(back.clf->pooling == p);
        CHECK(torch::allclose(predict_proba(*c, seqs, 16, false, 2), predict_proba(*back.clf, seqs, 16, false, 2)));
    }
    // Files written before the poolings were named ("pooling": "mean" or none, no "pooling_version") were made with
    // the reference's pooling and are read so (other names keep their meaning); a version this code does not know, or
    // an unknown name, is refused.
    auto old_file = [&](const nlohmann::json& meta) {
        save_model(path, *clf->backbone, {{"janusdna_classifier", meta.dump()}},
                   {{"classifier.weight", clf->head->weight}, {"classifier.bias", clf->head->bias}});
        return classifier_of(load_model(path));
    };
    const nlohmann::json base = {{"classes", {"x", "y", "z"}}, {"length", 16}, {"rc", true}};
    nlohmann::json j = base;
    j["pooling"] = "mean";
    LoadedClassifier old = old_file(j);
    CHECK(old.info.pooling == "reference");
    CHECK(old.clf->pooling == Pooling::Reference);
    CHECK(old_file(base).info.pooling == "reference");
    j["pooling"] = "reference";
    CHECK(old_file(j).clf->pooling == Pooling::Reference);
    j["pooling_version"] = 2;
    j["pooling"] = "mean";
    CHECK(old_file(j).clf->pooling == Pooling::Mean);
    j["pooling_version"] = 3;
    CHECK_THROWS_WITH_AS(old_file(j), doctest::Contains("pooling_version 3"), Error);
    j = base;
    j["pooling"] = "max";
    CHECK_THROWS_WITH_AS(old_file(j), doctest::Contains("unknown pooling \"max\""), Error);

    // A head whose shape disagrees with its classes is named.
    info.classes = {"a", "b"};
    save_classifier(path, *clf, info);
    CHECK_THROWS_WITH_AS(classifier_of(load_model(path)), doctest::Contains("classifier head has shape [3, 8], expected [2, 8]"), Error);
    // A pretrained model is not a classifier.
    save_model(path, *clf->backbone);
    CHECK_THROWS_WITH_AS(classifier_of(load_model(path)), doctest::Contains("not a fine-tuned model"), Error);
    std::remove(path.c_str());
}

TEST_CASE("finetune resume: a checkpoint at an epoch end or mid-epoch continues bit-identically") {
    std::vector<std::string> tr, va;
    std::vector<int> ytr, yva;
    planted(40, 20, 3, tr, ytr);
    planted(12, 20, 4, va, yva);
    FinetuneOptions o;
    o.length = 20;
    o.batch = 8;
    o.epochs = 3;
    o.rc = true;
    o.seed = 9;
    const std::string ckpt = "/tmp/janusdna_test_ft.ckpt";
    SequenceClassifier ref = tiny_classifier();
    Finetuner a(ref, o, tr, ytr, va, yva, 2);
    while (!a.done()) a.run_epoch();

    for (int stop_after : {5, 7}) {  // epoch 1 ends at step 5; 7 is inside epoch 2
        CAPTURE(stop_after);
        SequenceClassifier first = tiny_classifier();
        Finetuner b(first, o, tr, ytr, va, yva, 2);
        while (b.step() < stop_after) b.run_epoch([&] { return b.step() < stop_after; });
        b.save_checkpoint(ckpt, {{"note", "x"}});
        SequenceClassifier second = tiny_classifier(2, 77); // different initial weights: all must come from the file
        Finetuner c(second, o, tr, ytr, va, yva, 2);
        CHECK(c.load_checkpoint(ckpt)["note"] == "x");
        CHECK(c.step() == stop_after);
        while (!c.done()) c.run_epoch();
        CHECK(same_weights(*ref, *second));
        CHECK(c.best_epoch() == a.best_epoch());
        CHECK(c.history().size() == a.history().size());
    }
    // Other options: refused.
    FinetuneOptions other = o;
    other.lr = 5e-3;
    SequenceClassifier third = tiny_classifier();
    Finetuner d(third, other, tr, ytr, va, yva, 2);
    CHECK_THROWS_WITH_AS(d.load_checkpoint(ckpt), doctest::Contains("other options"), Error);
    // Another pooling is another option; options and classifier must agree on it.
    other = o;
    other.pooling = "reference";
    SequenceClassifier fourth = tiny_classifier(2, 3, Pooling::Reference);
    Finetuner e(fourth, other, tr, ytr, va, yva, 2);
    CHECK_THROWS_WITH_AS(e.load_checkpoint(ckpt), doctest::Contains("other options"), Error);
    SequenceClassifier fifth = tiny_classifier(2, 3, Pooling::Center);
    CHECK_THROWS_WITH_AS(Finetuner(fifth, o, tr, ytr, va, yva, 2), doctest::Contains("pooling"), Error);
    std::remove(ckpt.c_str());
}
