// A C++ program that prices options with the phasm surrogate exported from pricer.py, and runs the
// original binomial tree for every call the surrogate's gate does not trust.
//
//   build/pricer_cpp [N]      N random options (default 20000) in the captured range
//
// Build: make -C examples/native (needs build/pricer.hpp from `phasm export --lang cpp`).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "pricer.hpp"

namespace {

constexpr int STEPS = 200;  // as pricer.py

// The original: a Cox-Ross-Rubinstein tree for a European call, x = {S, K, r, v, T}.
void crr_call(const double *x, double *y) {
    const double S = x[0], K = x[1], r = x[2], v = x[3], T = x[4];
    const double dt = T / STEPS, u = std::exp(v * std::sqrt(dt)), p = (std::exp(r * dt) - 1.0 / u) / (u - 1.0 / u);
    const double disc = std::exp(-r * dt), a = disc * p, b = disc * (1.0 - p);
    double V[STEPS + 1];
    for (int j = 0; j <= STEPS; ++j) V[j] = std::max(S * std::pow(u, 2 * j - STEPS) - K, 0.0);
    for (int i = STEPS; i > 0; --i)
        for (int j = 0; j < i; ++j) V[j] = a * V[j + 1] + b * V[j];
    y[0] = V[0];
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char **argv) {
    const std::size_t n = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 20000;
    const double low[5] = {80.0, 80.0, 0.0, 0.1, 0.25}, high[5] = {120.0, 120.0, 0.05, 0.5, 2.0};
    std::mt19937_64 rng(1);
    std::vector<double> in(n * 5), exact(n), answer(n);
    for (std::size_t i = 0; i < n * 5; ++i)
        in[i] = std::uniform_real_distribution<double>(low[i % 5], high[i % 5])(rng);

    auto t0 = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < n; ++i) crr_call(&in[5 * i], &exact[i]);
    const double t_original = seconds_since(t0);

    phasm::pricer model;  // the surrogate and its trust gate; crr_call answers what the gate refuses
    t0 = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < n; ++i) model.call(&in[5 * i], &answer[i], crr_call);
    const double t_surrogate = seconds_since(t0);

    // The surrogate alone: the model and its gate's verdict, no fallback.
    t0 = std::chrono::steady_clock::now();
    std::size_t trusted = 0;
    for (std::size_t i = 0; i < n; ++i) trusted += phasm::pricer::predict(&in[5 * i], &answer[i]) ? 1 : 0;
    const double t_model = seconds_since(t0);
    for (std::size_t i = 0; i < n; ++i)
        if (!phasm::pricer::predict(&in[5 * i], &answer[i])) crr_call(&in[5 * i], &answer[i]);

    // How good were the trusted answers? (rel 1% or abs 5 cents, as the tolerance in pricer.py)
    std::size_t misses = 0;
    double worst = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
        const double err = std::fabs(answer[i] - exact[i]);
        worst = std::max(worst, err);
        if (err > 0.05 && err > 0.01 * std::fabs(exact[i])) ++misses;
    }
    std::printf("C++: %zu options priced\n", n);
    std::printf("  original tree (%d steps):   %8.2f us per call\n", STEPS, 1e6 * t_original / n);
    std::printf("  surrogate + gate + fallback: %7.2f us per call (%.1fx faster)\n", 1e6 * t_surrogate / n,
                t_original / t_surrogate);
    std::printf("  of which model + gate alone: %7.2f us per call (%zu trusted)\n", 1e6 * t_model / n, trusted);
    std::printf("  answered by the model: %zu, by the original: %zu (fallback rate %.1f%%)\n",
                model.calls() - model.fallbacks(), model.fallbacks(), 100.0 * model.fallback_rate());
    std::printf("  beyond tolerance: %zu of %zu model answers (%.2f%%; certified bound 1%%), worst error %.4f\n", misses,
                model.calls() - model.fallbacks(), 100.0 * misses / std::max<std::size_t>(1, model.calls() - model.fallbacks()),
                worst);
    double out[1];
    const double nan_row[5] = {NAN, 100.0, 0.01, 0.2, 1.0}, far_row[5] = {300.0, 100.0, 0.01, 0.2, 1.0};
    std::printf("  NaN input trusted: %s; S=300 (outside the captures) trusted: %s\n",
                phasm::pricer::predict(nan_row, out) ? "yes" : "no", phasm::pricer::predict(far_row, out) ? "yes" : "no");
    return 0;
}
