# flexmix's choice of K on real data sets, for tests/peers/select_k.py.
#
# Usage: Rscript select_k.R OUTDIR NREP SEED
#
# For each data set below: writes OUTDIR/NAME.csv (the data as used), then fits
# stepFlexmix(formula, k = 1:4, nrep = NREP) and prints one line per K:
#   SELECTK_JSON {"data": NAME, "k": K, "k_fit": ..., "loglik": ..., "bic": ..., "icl": ...,
#                 "prior": [...], "sigma": [...]}
# flexmix removes components whose prior falls below minprior (0.05 by default), so k_fit can be
# below k. Its sigma has a degrees-of-freedom correction (see FACTS.md), so loglik is slightly
# below the exact maximum.
suppressPackageStartupMessages({
  library(flexmix)
  library(mixtools)
})
args <- commandArgs(trailingOnly = TRUE)
outdir <- args[1]
nrep <- as.integer(args[2])
seed <- as.integer(args[3])

data(CO2data, package = "mixtools")
data(NOdata, package = "mixtools")
data(tonedata, package = "mixtools")
data(NPreg, package = "flexmix")
data(NregFix, package = "flexmix")
nregfix <- data.frame(
  x1 = NregFix$x1, x2 = as.numeric(as.character(NregFix$x2)),
  w = as.numeric(as.character(NregFix$w)), y = as.numeric(NregFix$y)
)
sets <- list(
  list(name = "CO2data", data = CO2data[, c("GNP", "CO2")], formula = CO2 ~ GNP),
  list(name = "NOdata", data = NOdata, formula = NO ~ Equivalence),
  list(name = "tonedata", data = tonedata, formula = tuned ~ stretchratio),
  list(name = "NPreg", data = NPreg[, c("x", "yn")], formula = yn ~ x + I(x^2)),
  list(name = "NregFix", data = nregfix, formula = y ~ x1 + x2 + w)
)
num <- function(x) paste0("[", paste(format(x, digits = 10), collapse = ","), "]")
for (s in sets) {
  write.csv(s$data, file.path(outdir, paste0(s$name, ".csv")), row.names = FALSE)
  set.seed(seed)
  fits <- stepFlexmix(s$formula, data = s$data, k = 1:4, nrep = nrep, verbose = FALSE,
                      control = list(tolerance = 1e-8, iter.max = 1000))
  for (k in 1:4) {
    m <- getModel(fits, as.character(k))
    sig <- sapply(seq_len(m@k), function(j) parameters(m, component = j)["sigma", 1])
    cat(sprintf(
      'SELECTK_JSON {"data": "%s", "k": %d, "k_fit": %d, "loglik": %.10g, "bic": %.10g, "icl": %.10g, "prior": %s, "sigma": %s}\n',
      s$name, k, m@k, logLik(m), BIC(m), ICL(m), num(prior(m)), num(sig)
    ))
  }
}
