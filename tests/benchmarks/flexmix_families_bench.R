# Reference fit for tests/benchmarks/bench_families.py: flexmix's Poisson mixture regression
# with an exposure offset, on the same simulated data as bayes_mlr.
#
# Usage:
#   Rscript flexmix_families_bench.R DATA.bin N P K NREP TOL SEED REPEATS
#
# DATA.bin holds N * (P + 2) little-endian float64 values in row-major order: each row is
# x_1, ..., x_P, y, h (numpy's ndarray.tofile of a C-contiguous (N, P + 2) array); y is a count
# and h > 0 the exposure.
#
# The model, fitted REPEATS times (each time after set.seed(SEED), so every repeat is the same
# computation and only its time varies):
#   stepFlexmix(y ~ x_1 + ... + x_P, k = K, nrep = NREP,
#               model = FLXMRglm(family = "poisson", offset = log(h)),
#               control = list(tolerance = TOL))
# i.e. NREP starts, each a random hard assignment of the rows to K clusters run to convergence,
# the best log-likelihood kept; every M-step is glm.fit (IRLS to its own convergence) per
# component, warm-started at the component's current coefficients.
#
# Output: one line on stdout starting with "BENCH_JSON " and followed by a JSON object. Only
# the fitting itself is inside the timed region (elapsed wall-clock seconds from proc.time());
# reading the data and building the data frame are not.
#   method      "flexmix"
#   seconds     median elapsed wall-clock seconds of the REPEATS fits (each with all NREP starts)
#   seconds_all the REPEATS elapsed times, in order
#   loglik      flexmix's own log-likelihood of its final fit (the last repeat)
#   iter        EM iterations of the best start
#   converged   whether flexmix reports convergence
#   k_fit       number of components in the returned fit (flexmix may drop small ones)
#   prior       mixing proportions (length k_fit)
#   coef        coefficients, column-major k_fit x (P + 1): intercept, x_1, ..., x_P per
#               component

args <- commandArgs(trailingOnly = TRUE)
if (length(args) < 8) {
  stop("usage: Rscript flexmix_families_bench.R DATA.bin N P K NREP TOL SEED REPEATS")
}
path <- args[1]
n <- as.integer(args[2])
p <- as.integer(args[3])
k <- as.integer(args[4])
nrep <- as.integer(args[5])
tol <- as.numeric(args[6])
seed <- as.integer(args[7])
repeats <- as.integer(args[8])
if (repeats < 1L) stop("REPEATS must be at least 1")

width <- p + 2L
con <- file(path, "rb")
raw <- readBin(con, what = "double", n = n * width, size = 8, endian = "little")
close(con)
if (length(raw) != n * width) stop("data file is shorter than N * (P + 2) doubles")
m <- matrix(raw, nrow = n, ncol = width, byrow = TRUE)
x_names <- paste0("x", seq_len(p))
d <- data.frame(m[, seq_len(p), drop = FALSE])
colnames(d) <- x_names
d$y <- m[, p + 1L]
d$h <- m[, p + 2L]
formula <- as.formula(paste("y ~", paste(x_names, collapse = " + ")))

num <- function(v) {
  v <- as.numeric(v)
  out <- ifelse(is.finite(v), sprintf("%.17g", v), "null")
  paste0("[", paste(out, collapse = ","), "]")
}
scalar <- function(v) {
  v <- as.numeric(v)
  if (length(v) != 1 || !is.finite(v)) "null" else sprintf("%.17g", v)
}

suppressPackageStartupMessages(library(flexmix))
seconds <- numeric(repeats)
for (i in seq_len(repeats)) {
  set.seed(seed)
  t0 <- proc.time()
  fit <- stepFlexmix(formula, data = d, k = k, nrep = nrep, verbose = FALSE,
                     model = FLXMRglm(family = "poisson", offset = log(d$h)),
                     control = list(tolerance = tol))
  seconds[i] <- (proc.time() - t0)[["elapsed"]]
}

# Rows of parameters(fit): coef.(Intercept), coef.x1, ..., coef.xP; one column per component.
par <- parameters(fit)
coef <- par[paste0("coef.", c("(Intercept)", x_names)), , drop = FALSE]
cat(sprintf(paste0(
  "BENCH_JSON {\"method\":\"flexmix\",\"seconds\":%s,\"seconds_all\":%s,\"loglik\":%s,",
  "\"iter\":%s,\"converged\":%s,\"k_fit\":%d,\"prior\":%s,\"coef\":%s}\n"),
  scalar(median(seconds)), num(seconds), scalar(as.numeric(logLik(fit))), scalar(fit@iter),
  if (isTRUE(fit@converged)) "true" else "false", ncol(par), num(prior(fit)), num(coef)))
