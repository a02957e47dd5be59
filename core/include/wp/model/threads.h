// How many threads the engine runs: each model's pool (LoadOptions::threads) and OpenBLAS's,
// which belong to the whole process.
#pragma once

namespace wp {

// The most threads a model's pool (LoadOptions::threads) or OpenBLAS may be given: far above any
// machine this runs on, yet low enough that an absurd request fails instead of exhausting the system.
inline constexpr int kMaxThreads = 256;

// One per core, at least 1: what a thread count of 0 means here and in LoadOptions::threads.
int default_thread_count();

// Sets OpenBLAS's thread count (sgemm of long prompts) for the process, once: the first call
// wins and returns true; later calls change nothing and return false. threads <= 0:
// default_thread_count(); above kMaxThreads: kMaxThreads. Executables call it at start-up, before any model runs, since changing
// it while another thread is inside sgemm is a data race; models never set it. Without a call,
// OpenBLAS keeps its own default (OPENBLAS_NUM_THREADS, else every core).
bool set_blas_threads(int threads);

// The BLAS library's own description of its build (kernels, threads), for the About box.
const char* blas_build_info();

}  // namespace wp
