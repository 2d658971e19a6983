# Reference fit for tests/benchmarks/bench_structured.py: flexmix with grouped rows, a
# concomitant model and shared ("fixed") coefficients, on the same simulated data as bayes_mlr.
#
# Usage:
#   Rscript flexmix_structured_bench.R DATA.bin N P R K NREP TOL SEED SHARED
#
# DATA.bin holds N * (P + 2 + R) little-endian float64 values in row-major order: each row is
# x_1, ..., x_P, y, group, z_1, ..., z_R (numpy's ndarray.tofile of a C-contiguous array). The
# group is an integer code; the concomitant variables z are constant within a group. SHARED is
# a comma-separated list of the (1-based) columns of x whose coefficient is shared by all
# components ("0" for none).
#
# The model, fitted by stepFlexmix with NREP starts (the best log-likelihood is kept):
#   y ~ <x columns not shared> | group, model = FLXMRglmfix(fixed = ~ <shared x columns>),
#   concomitant = FLXPmultinom(~ z_1 + ... + z_R), control = list(tolerance = TOL)
#
# Output: one line on stdout starting with "BENCH_JSON " and followed by a JSON object. Only
# the fitting itself is inside the timed region (elapsed wall-clock seconds from proc.time());
# reading the data and building the data frame are not.
#   method      "flexmix"
#   seconds     elapsed wall-clock seconds of the fit (all NREP starts)
#   loglik      flexmix's own log-likelihood of its final fit
#   iter        EM iterations of the best start
#   converged   whether flexmix reports convergence
#   k_fit       number of components in the returned fit (flexmix may drop small ones)
#   coef        coefficients, column-major k_fit x (P + 1): intercept, x_1, ..., x_P per
#               component (a shared coefficient is repeated in every component)
#   sigma       component standard deviations (length k_fit)
#   conc        concomitant coefficients, column-major (R + 1) x k_fit: intercept, z_1, ...,
#               z_R per component; component 1 is the reference (all zeros)

args <- commandArgs(trailingOnly = TRUE)
if (length(args) < 9) {
  stop("usage: Rscript flexmix_structured_bench.R DATA.bin N P R K NREP TOL SEED SHARED")
}
path <- args[1]
n <- as.integer(args[2])
p <- as.integer(args[3])
r <- as.integer(args[4])
k <- as.integer(args[5])
nrep <- as.integer(args[6])
tol <- as.numeric(args[7])
seed <- as.integer(args[8])
shared <- setdiff(as.integer(strsplit(args[9], ",", fixed = TRUE)[[1]]), 0L)
if (any(shared < 1L | shared > p)) stop("SHARED columns must lie in 1..P")
if (r < 1L) stop("R (the number of concomitant variables) must be at least 1")

width <- p + 2L + r
con <- file(path, "rb")
raw <- readBin(con, what = "double", n = n * width, size = 8, endian = "little")
close(con)
if (length(raw) != n * width) stop("data file is shorter than N * (P + 2 + R) doubles")
m <- matrix(raw, nrow = n, ncol = width, byrow = TRUE)
x_names <- paste0("x", seq_len(p))
z_names <- paste0("z", seq_len(r))
d <- data.frame(m[, seq_len(p), drop = FALSE])
colnames(d) <- x_names
d$y <- m[, p + 1L]
d$id <- as.integer(m[, p + 2L])
for (j in seq_len(r)) d[[z_names[j]]] <- m[, p + 2L + j]

free <- setdiff(seq_len(p), shared)
rhs <- if (length(free)) paste(x_names[free], collapse = " + ") else "1"
formula <- as.formula(paste("y ~", rhs, "| id"))

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
model <- if (length(shared)) {
  FLXMRglmfix(fixed = as.formula(paste("~", paste(x_names[shared], collapse = " + "))))
} else {
  FLXMRglm()
}
concomitant <- FLXPmultinom(as.formula(paste("~", paste(z_names, collapse = " + "))))

set.seed(seed)
t0 <- proc.time()
fit <- stepFlexmix(formula, data = d, k = k, nrep = nrep, verbose = FALSE, model = model,
                   concomitant = concomitant, control = list(tolerance = tol))
elapsed <- (proc.time() - t0)[["elapsed"]]

# Rows of parameters(fit): coef.<name> for every regressor (shared ones first for
# FLXMRglmfix) and sigma; one column per component. Put them in the order intercept, x_1..x_P.
par <- parameters(fit)
coef <- par[paste0("coef.", c("(Intercept)", x_names)), , drop = FALSE]
conc <- parameters(fit, which = "concomitant")
conc <- conc[c("(Intercept)", z_names), , drop = FALSE]
cat(sprintf(paste0(
  "BENCH_JSON {\"method\":\"flexmix\",\"seconds\":%s,\"loglik\":%s,\"iter\":%s,",
  "\"converged\":%s,\"k_fit\":%d,\"coef\":%s,\"sigma\":%s,\"conc\":%s}\n"),
  scalar(elapsed), scalar(as.numeric(logLik(fit))), scalar(fit@iter),
  if (isTRUE(fit@converged)) "true" else "false", ncol(par),
  num(coef), num(par["sigma", ]), num(conc)))
