# Reference fits for tests/benchmarks/bench_em.py: flexmix (and optionally mixtools) on the
# same simulated data as bayes_mlr.
#
# Usage:
#   Rscript flexmix_bench.R DATA.bin N P K NREP TOL SEED REPEATS [mixtools]
#
# DATA.bin holds N * (P + 1) little-endian float64 values in row-major order: each row is
# x_1, ..., x_P, y (numpy's ndarray.tofile of a C-contiguous (N, P + 1) array).
#
# Each method is fitted REPEATS times in this one process, each time after set.seed(SEED), so
# every repeat is the same computation and only its time varies:
#   flexmix:  stepFlexmix(y ~ ., k = K, nrep = NREP, control = list(tolerance = TOL)), i.e.
#             NREP starts, each a random hard assignment run to convergence on all rows, the
#             best log-likelihood kept;
#   mixtools: regmixEM(y, x, k = K, epsilon = TOL), one start.
#
# Output: one line per fitted method on stdout, starting with "BENCH_JSON " and followed by a
# JSON object. Only the fitting itself is inside the timed region (elapsed wall-clock seconds
# from proc.time()); reading the data and building the data frame are not.
#   method      "flexmix" or "mixtools"
#   seconds     median elapsed wall-clock seconds of the REPEATS fits
#   seconds_all the REPEATS elapsed times, in order
#   loglik      the package's own log-likelihood of its final fit (the last repeat)
#   iter        EM iterations (of the best start for stepFlexmix)
#   converged   whether the package reports convergence
#   prior       mixing proportions (length k_fit; flexmix may drop components)
#   coef        coefficients, column-major k_fit x (P + 1): intercept then slopes per component
#   sigma       component standard deviations
#   k_fit       number of components in the returned fit

args <- commandArgs(trailingOnly = TRUE)
if (length(args) < 8) {
  stop("usage: Rscript flexmix_bench.R DATA.bin N P K NREP TOL SEED REPEATS [mixtools]")
}
path <- args[1]
n <- as.integer(args[2])
p <- as.integer(args[3])
k <- as.integer(args[4])
nrep <- as.integer(args[5])
tol <- as.numeric(args[6])
seed <- as.integer(args[7])
repeats <- as.integer(args[8])
if (is.na(repeats) || repeats < 1L) stop("REPEATS must be at least 1")
run_mixtools <- length(args) >= 9 && args[9] == "mixtools"

con <- file(path, "rb")
raw <- readBin(con, what = "double", n = n * (p + 1), size = 8, endian = "little")
close(con)
if (length(raw) != n * (p + 1)) stop("data file is shorter than N * (P + 1) doubles")
m <- matrix(raw, nrow = n, ncol = p + 1, byrow = TRUE)
x <- m[, seq_len(p), drop = FALSE]
colnames(x) <- paste0("x", seq_len(p))
y <- m[, p + 1]
d <- data.frame(x, y = y)

num <- function(v) {
  v <- as.numeric(v)
  out <- ifelse(is.finite(v), sprintf("%.17g", v), "null")
  paste0("[", paste(out, collapse = ","), "]")
}
scalar <- function(v) {
  v <- as.numeric(v)
  if (length(v) != 1 || !is.finite(v)) "null" else sprintf("%.17g", v)
}
emit <- function(method, seconds, loglik, iter, converged, prior, coef, sigma) {
  cat(sprintf(paste0(
    "BENCH_JSON {\"method\":\"%s\",\"seconds\":%s,\"seconds_all\":%s,\"loglik\":%s,",
    "\"iter\":%s,\"converged\":%s,\"k_fit\":%d,\"prior\":%s,\"coef\":%s,\"sigma\":%s}\n"),
    method, scalar(median(seconds)), num(seconds), scalar(loglik), scalar(iter),
    if (isTRUE(converged)) "true" else "false", length(prior),
    num(prior), num(coef), num(sigma)))
}

suppressPackageStartupMessages(library(flexmix))
elapsed <- numeric(repeats)
for (i in seq_len(repeats)) {
  set.seed(seed)
  t0 <- proc.time()
  fit <- stepFlexmix(y ~ ., data = d, k = k, nrep = nrep, verbose = FALSE,
                     control = list(tolerance = tol))
  elapsed[i] <- (proc.time() - t0)[["elapsed"]]
}
par <- parameters(fit)  # rows: coef.(Intercept), coef.x1, ..., sigma; one column per component
coef_rows <- grep("^coef\\.", rownames(par))
emit("flexmix", elapsed, as.numeric(logLik(fit)), fit@iter, fit@converged,
     prior(fit), par[coef_rows, , drop = FALSE], par["sigma", ])

if (run_mixtools) {
  suppressPackageStartupMessages(library(mixtools))
  elapsed <- numeric(repeats)
  for (i in seq_len(repeats)) {
    set.seed(seed)
    t0 <- proc.time()
    mt <- regmixEM(y, x, k = k, epsilon = tol, verb = FALSE)
    elapsed[i] <- (proc.time() - t0)[["elapsed"]]
  }
  # mixtools stops at maxit = 10000 without converging; all.loglik has one entry per iteration.
  iters <- length(mt$all.loglik) - 1
  emit("mixtools", elapsed, mt$loglik, iters, iters < 10000,
       mt$lambda, mt$beta, rep_len(mt$sigma, k))
}
