// A projector worker process for the multi-process tests:
//   projection_worker URL WORKER_ID LEASE_MS COUNT
// runs ledger_0 … ledger_{COUNT-1} until SIGTERM (a clean stop) or SIGKILL.
#include <csignal>
#include <cstdio>
#include <thread>

#include "ledger.hpp"

namespace {
volatile std::sig_atomic_t stop_requested = 0;
void on_signal(int) {
    stop_requested = 1;
}
}  // namespace

int main(int argc, char** argv) {
    if (argc != 5) {
        std::fprintf(stderr, "usage: projection_worker URL WORKER_ID LEASE_MS COUNT\n");
        return 2;
    }
    std::signal(SIGTERM, on_signal);
    try {
        factstr::Store store = factstr::open(argv[1]);
        factstr::projections::EngineOptions options;
        options.worker_id = argv[2];
        options.lease = std::chrono::milliseconds(std::stoi(argv[3]));
        options.page_facts = 500;
        factstr::projections::Engine engine(store, options);
        for (int i = 0; i < std::stoi(argv[4]); ++i)
            engine.add(factstr::testing::ledger(i));
        engine.start();
        std::printf("started\n");
        std::fflush(stdout);
        while (!stop_requested)
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        engine.stop();
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "projection_worker: %s\n", e.what());
        return 1;
    }
}
