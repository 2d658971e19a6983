# structure_refs.R -- R flexmix reference fits for bayes_mlr structure features
# (concomitant / grouped / shared (FLXMRglmfix) / combined), simulated + real data.
#
# Usage:  Rscript structure_refs.R OUTDIR
#
# For each case writes
#   OUTDIR/<case>.csv            the data (row.names = FALSE)
#   OUTDIR/<case>_posterior.csv  posterior of the best fit (one row per data row)
#   OUTDIR/<case>.json           fit summary (see README.md next to this script)
# Only calls flexmix; nothing is copied from it.

suppressMessages({
  library(flexmix)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
OUTDIR <- if (length(args) >= 1) args[1] else "out"
dir.create(OUTDIR, showWarnings = FALSE, recursive = TRUE)

SEEDS <- 1:30
CTL <- list(tolerance = 1e-10, iter.max = 5000, minprior = 0)
t_start <- proc.time()[["elapsed"]]

## ---------------------------------------------------------------- helpers --
named_list <- function(v) {               # named numeric vector -> JSON object
  if (is.null(v)) return(NULL)
  as.list(setNames(as.numeric(v), names(v)))
}
mat_to_list <- function(M) {               # matrix -> {colname: {rowname: value}}
  if (is.null(M)) return(NULL)
  if (is.list(M) && !is.data.frame(M))     # nested FLXMRglmfix: parameters() is a list
    return(lapply(M, function(v) as.list(setNames(as.numeric(v), names(v)))))
  M <- as.matrix(M)
  out <- lapply(seq_len(ncol(M)), function(j) as.list(setNames(as.numeric(M[, j]), rownames(M))))
  names(out) <- colnames(M)
  out
}
coefmat_to_list <- function(cm) {          # flexmix Coefmat -> list(estimate=, se=)
  cm <- as.matrix(cm@.Data)
  rn <- rownames(cm)
  if (is.null(rn)) rn <- rownames(attr(cm, "dimnames")[[1]])
  list(rownames = rn,
       estimate = as.list(setNames(cm[, 1], rn)),
       std_error = as.list(setNames(cm[, 2], rn)))
}
err_msg <- function(e) conditionMessage(e)

# fit `expr_fun(seed)` (a function returning a flexmix object) over SEEDS, keep best
best_of <- function(fit_fun) {
  lls <- rep(NA_real_, length(SEEDS)); ks <- rep(NA_integer_, length(SEEDS))
  conv <- rep(NA, length(SEEDS)); iters <- rep(NA_integer_, length(SEEDS))
  errs <- character(0)
  best <- NULL
  for (i in seq_along(SEEDS)) {
    set.seed(SEEDS[i])
    m <- tryCatch(fit_fun(), error = function(e) e)
    if (inherits(m, "error")) { errs <- c(errs, sprintf("seed %d: %s", SEEDS[i], err_msg(m))); next }
    lls[i] <- as.numeric(logLik(m)); ks[i] <- m@k; conv[i] <- m@converged; iters[i] <- m@iter
    if (is.null(best) || lls[i] > as.numeric(logLik(best))) { best <- m; best_seed <- SEEDS[i] }
  }
  list(model = best, seed = best_seed, logliks = lls, k_final = ks,
       converged = conv, iter = iters, errors = errs)
}

# MLE-style sigma diagnostic: sqrt(sum(post * resid^2) / sum(post)) per component
# (flexmix's own sigma divides by (n - rank) * mean(w) instead, see README).
sigma_weighted_mle <- function(m, y) {
  post <- posterior(m)
  fit <- fitted(m)              # n x K matrix of component means
  sapply(seq_len(m@k), function(j) sqrt(sum(post[, j] * (y - fit[, j])^2) / sum(post[, j])))
}

# polish: re-maximise flexmix's own observed-data log-lik function (FLXlogLikfun)
# from the refit estimates with a much tighter BFGS tolerance -> (near) exact MLE.
# Needed because flexmix's EM fixed point is NOT the MLE (sigma df-correction;
# FLXMRglmfix shared coefs fitted by pooled WLS ignoring 1/sigma_k^2).
polish <- function(m, start) {
  f <- FLXlogLikfun(m)
  g <- tryCatch(FLXgradlogLikfun(m), error = function(e) NULL)
  grad_kind <- "analytic (FLXgradlogLikfun)"
  if (is.null(g)) {                        # e.g. FLXMRglmfix: no analytic gradient
    grad_kind <- "central differences, h = 1e-6"
    g <- function(p) sapply(seq_along(p), function(i) {
      h <- 1e-6; e <- replace(numeric(length(p)), i, h); (f(p + e) - f(p - e)) / (2 * h) })
  }
  op <- tryCatch(optim(start, f, g, method = "BFGS",
                       control = list(fnscale = -1, reltol = 1e-15, maxit = 20000)),
                 error = function(e) e)
  if (inherits(op, "error")) return(list(error = err_msg(op)))
  gr <- if (!is.null(g)) g(op$par) else NULL
  nat <- op$par
  ls <- grepl("log\\(sigma\\)", names(nat))
  sig <- exp(nat[ls]); names(sig) <- sub("log\\(sigma\\)", "sigma", names(nat)[ls])
  al <- grepl("^concomitant_Comp\\.[0-9]+\\.alpha$", names(nat))
  pri <- if (any(al)) { e <- exp(c(0, nat[al])); setNames(e / sum(e), paste0("Comp.", seq_len(sum(al) + 1))) } else NULL
  list(method = "optim BFGS on FLXlogLikfun(m) (flexmix's log-lik, sigma on log scale, priors as alpha=log(pi_k/pi_1)), reltol=1e-15, start = refit coef",
       logLik = op$value, convergence = op$convergence, counts = as.list(op$counts),
       max_abs_gradient = if (!is.null(gr)) max(abs(gr)) else NULL,
       gradient_kind = grad_kind,
       coef = named_list(op$par),
       sigma = named_list(sig),
       prior_from_alpha = named_list(pri))
}

run_case <- function(case, data, formula_str, call_desc, k, fit_fun, y,
                     truth = NULL, notes = NULL, group_var = NULL,
                     k1_fun = NULL, extra = NULL) {
  t0 <- proc.time()[["elapsed"]]
  write.csv(data, file.path(OUTDIR, paste0(case, ".csv")), row.names = FALSE)
  res <- best_of(fit_fun)
  m <- res$model
  ll <- logLik(m)
  K_final <- m@k
  comp_names <- paste0("Comp.", seq_len(K_final))

  par_reg <- parameters(m)                       # rows coef.*, sigma ; cols Comp.j
  has_conc <- is(m@concomitant, "FLXPmultinom") && m@k > 1   # plain priors: class "FLXP", formula ~1
  par_conc <- if (has_conc) parameters(m, which = "concomitant") else NULL
  pri <- prior(m)

  ## refit (method = "optim": BFGS re-maximisation of the log-lik from the EM
  ## solution; sigma on log scale; concomitant on multinomial-logit scale)
  rf <- tryCatch(refit(m), error = function(e) e)
  refit_out <- if (inherits(rf, "error")) list(error = err_msg(rf)) else {
    comps <- lapply(rf@components[[1]], coefmat_to_list)
    conc <- tryCatch(lapply(rf@concomitant, coefmat_to_list), error = function(e) NULL)
    se_all <- sqrt(diag(rf@vcov)); names(se_all) <- names(rf@coef)
    ll_refit <- tryCatch(FLXlogLikfun(m)(rf@coef), error = function(e) NA_real_)
    ll_em_par <- tryCatch(FLXlogLikfun(m)(FLXgetParameters(m)), error = function(e) NA_real_)
    list(method = "optim (refit default): BFGS on the observed-data log-lik starting at the EM estimates; SE = sqrt(diag(-solve(Hessian)))",
         regression = comps,
         concomitant = conc,
         concomitant_note = if (!has_conc)
           "no concomitant: the 'prior' row is alpha_k = log(pi_k/pi_1), k = 2..K" else
           "multinomial logit coefficients of Comp.k vs Comp.1 (reference, coefficients fixed at 0), k = 2..K",
         all_coef = named_list(rf@coef),
         all_se = named_list(se_all),
         vcov_names = names(rf@coef),
         vcov = unname(rf@vcov),
         loglik_at_refit_coef = ll_refit,
         loglik_at_em_coef_via_FLXlogLikfun = ll_em_par,
         polished_mle = polish(m, rf@coef))
  }

  ## K = 1 log-lik (flexmix, with the same model but no concomitant)
  k1 <- NULL
  if (!is.null(k1_fun)) {
    set.seed(1)
    m1 <- tryCatch(k1_fun(), error = function(e) e)
    k1 <- if (inherits(m1, "error")) list(error = err_msg(m1)) else
      list(logLik = as.numeric(logLik(m1)), df = attr(logLik(m1), "df"),
           BIC = BIC(m1), parameters = mat_to_list(parameters(m1)),
           note = "flexmix K=1 fit; its sigma uses the same (n - rank) correction, so logLik is slightly below the plain Gaussian-MLE value")
  }

  post <- posterior(m); colnames(post) <- comp_names
  write.csv(data.frame(post, cluster = clusters(m)),
            file.path(OUTDIR, paste0(case, "_posterior.csv")), row.names = FALSE)

  components <- lapply(seq_len(K_final), function(j) {
    cn <- comp_names[j]
    pr <- if (is.list(par_reg)) par_reg[[j]] else par_reg[, j]
    list(name = cn,
         prior = unname(pri[j]),
         coef = as.list(pr[grepl("^coef\\.", names(pr))]),
         sigma = unname(pr["sigma"]),
         concomitant_coef = if (!is.null(par_conc)) as.list(setNames(par_conc[, j], rownames(par_conc))) else NULL,
         se_regression = if (!is.null(refit_out$regression)) refit_out$regression[[cn]]$std_error else NULL,
         se_concomitant = if (has_conc && !is.null(refit_out$concomitant) && !is.null(refit_out$concomitant[[cn]]))
           refit_out$concomitant[[cn]]$std_error else NULL,
         se_log_prior_ratio_vs_Comp1 = if (!has_conc && !is.null(refit_out$concomitant) && !is.null(refit_out$concomitant[[cn]]))
           refit_out$concomitant[[cn]]$std_error[["prior"]] else NULL,
         sigma_weighted_mle_diag = sigma_weighted_mle(m, y)[j],
         cluster_size = unname(m@size[j]))
  })

  tol <- 1e-4   # nnet-based concomitant M-step is inexact: equal optima differ by ~1e-5
  out <- list(
    case = case,
    formula = formula_str,
    call = call_desc,
    flexmix_version = as.character(packageVersion("flexmix")),
    R_version = R.version.string,
    K = k, K_final = K_final,
    n = nrow(data),
    n_groups = if (!is.null(group_var)) length(unique(data[[group_var]])) else NULL,
    group_var = group_var,
    control = CTL,
    seeds = SEEDS, best_seed = res$seed,
    logliks_per_seed = res$logliks,
    n_seeds_at_best = sum(abs(res$logliks - as.numeric(ll)) < tol, na.rm = TRUE),
    n_seeds_at_best_tol = tol,
    n_seeds_within_1e6 = sum(abs(res$logliks - as.numeric(ll)) < 1e-6, na.rm = TRUE),
    k_final_per_seed = res$k_final,
    fit_errors = res$errors,
    converged = m@converged, iter = m@iter,
    logLik = as.numeric(ll), df = attr(ll, "df"), nobs = attr(ll, "nobs"),
    BIC = BIC(m), AIC = AIC(m),
    prior = as.numeric(pri),
    parameters = mat_to_list(par_reg),
    parameters_concomitant = mat_to_list(par_conc),
    concomitant_model = class(m@concomitant)[1],
    concomitant_reference = if (has_conc) "Comp.1 (column '1' is all zeros); columns k=2..K are log(P(k|z)/P(1|z)) coefficients" else NULL,
    prior_note = "prior(m) = colMeans of posterior over groups (one row per group when grouped); with a concomitant it is the average posterior, NOT a fitted intercept",
    components = components,
    refit = refit_out,
    K1 = k1,
    truth = truth,
    notes = notes,
    extra = extra,
    runtime_s = proc.time()[["elapsed"]] - t0
  )
  writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, null = "null", na = "null", pretty = TRUE),
             file.path(OUTDIR, paste0(case, ".json")))
  cat(sprintf("%-26s K=%d logLik=%.6f df=%d BIC=%.4f seeds_at_best=%d  (%.1fs)\n",
              case, K_final, as.numeric(ll), attr(ll, "df"), BIC(m),
              out$n_seeds_at_best, out$runtime_s))
  invisible(out)
}

## ================================================================== cases ==

## 1. concomitant_sim --------------------------------------------------------
set.seed(20240601)
n <- 600
x <- rnorm(n); z <- rnorm(n)
comp <- 1 + rbinom(n, 1, plogis(-0.3 + 1.5 * z))
y <- ifelse(comp == 1, 1 + 2 * x + rnorm(n, 0, 0.5), -1 - 1 * x + rnorm(n, 0, 0.8))
d1 <- data.frame(y = y, x = x, z = z, true_comp = comp)
run_case("concomitant_sim", d1, "y ~ x", "flexmix(y ~ x, data = d, k = 2, concomitant = FLXPmultinom(~ z), control = CTL)",
         2, function() flexmix(y ~ x, data = d1, k = 2, concomitant = FLXPmultinom(~ z), control = CTL),
         y = d1$y,
         truth = list(comp1 = list(intercept = 1, x = 2, sigma = 0.5),
                      comp2 = list(intercept = -1, x = -1, sigma = 0.8),
                      concomitant = "P(comp2 | z) = plogis(-0.3 + 1.5 z) (comp1 reference)",
                      concomitant_comp2_vs_comp1 = list(`(Intercept)` = -0.3, z = 1.5)),
         notes = "true_comp column is the simulated label (not used in the fit); fitted component labels are arbitrary",
         k1_fun = function() flexmix(y ~ x, data = d1, k = 1, control = CTL))

## 2. concomitant_sim3 -------------------------------------------------------
set.seed(20240602)
n <- 900
x <- rnorm(n); z1 <- rnorm(n)
z2 <- factor(sample(c("a", "b", "c"), n, replace = TRUE), levels = c("a", "b", "c"))
eta2 <- 0.2 + 1.0 * z1 + 0.8 * (z2 == "b") - 0.5 * (z2 == "c")
eta3 <- -0.3 - 1.0 * z1 + 0.2 * (z2 == "b") + 1.2 * (z2 == "c")
P <- cbind(1, exp(eta2), exp(eta3)); P <- P / rowSums(P)
comp <- apply(P, 1, function(p) sample(1:3, 1, prob = p))
b0 <- c(3, 0, -3); b1 <- c(1, -2, 0.5); sg <- c(0.5, 0.6, 0.7)
y <- b0[comp] + b1[comp] * x + rnorm(n, 0, sg[comp])
d2 <- data.frame(y = y, x = x, z1 = z1, z2 = z2, true_comp = comp)
run_case("concomitant_sim3", d2, "y ~ x",
         "flexmix(y ~ x, data = d, k = 3, concomitant = FLXPmultinom(~ z1 + z2), control = CTL)",
         3, function() flexmix(y ~ x, data = d2, k = 3, concomitant = FLXPmultinom(~ z1 + z2), control = CTL),
         y = d2$y,
         truth = list(comp1 = list(intercept = 3, x = 1, sigma = 0.5),
                      comp2 = list(intercept = 0, x = -2, sigma = 0.6),
                      comp3 = list(intercept = -3, x = 0.5, sigma = 0.7),
                      concomitant_comp2_vs_comp1 = list(`(Intercept)` = 0.2, z1 = 1.0, z2b = 0.8, z2c = -0.5),
                      concomitant_comp3_vs_comp1 = list(`(Intercept)` = -0.3, z1 = -1.0, z2b = 0.2, z2c = 1.2)),
         notes = c("z2 is a factor with levels a,b,c; R default treatment contrasts (contr.treatment): level 'a' is the reference, dummy columns z2b and z2c",
                   "concomitant design columns: (Intercept), z1, z2b, z2c"),
         extra = list(z2_levels = levels(z2), z2_contrasts = "contr.treatment", z2_reference_level = "a",
                      concomitant_design_columns = colnames(model.matrix(~ z1 + z2, d2))),
         k1_fun = function() flexmix(y ~ x, data = d2, k = 1, control = CTL))

## 3. grouped_sim ------------------------------------------------------------
set.seed(20240603)
G <- 100; m_per <- 6
id <- rep(seq_len(G), each = m_per)
gcomp <- 1 + rbinom(G, 1, 0.6)
comp <- gcomp[id]
x <- rnorm(G * m_per)
b0 <- c(0, 1); b1 <- c(1, -0.5); sg <- c(1.0, 0.8)
y <- b0[comp] + b1[comp] * x + rnorm(G * m_per, 0, sg[comp])
d3 <- data.frame(y = y, x = x, id = id, true_comp = comp)
run_case("grouped_sim", d3, "y ~ x | id", "flexmix(y ~ x | id, data = d, k = 2, control = CTL)",
         2, function() flexmix(y ~ x | id, data = d3, k = 2, control = CTL),
         y = d3$y, group_var = "id",
         truth = list(comp1 = list(intercept = 0, x = 1, sigma = 1.0),
                      comp2 = list(intercept = 1, x = -0.5, sigma = 0.8),
                      group_prior = c(0.4, 0.6)),
         notes = c("each group (id) has one latent label; lines overlap heavily, so the ungrouped fit would be poor",
                   "logLik = sum over groups of log sum_k pi_k prod_{i in group} N(y_i | ...)"),
         extra = list(ungrouped_best_logLik = {
           r0 <- best_of(function() flexmix(y ~ x, data = d3, k = 2, control = CTL))
           as.numeric(logLik(r0$model))}),
         k1_fun = function() flexmix(y ~ x, data = d3, k = 1, control = CTL))

## 4a. shared_sim ------------------------------------------------------------
set.seed(20240604)
n <- 600
x <- rnorm(n); w <- rnorm(n)
comp <- 1 + rbinom(n, 1, 0.55)
b0 <- c(2, -2); b1 <- c(1.5, -1); bw <- 0.7; sg <- c(0.5, 0.7)
y <- b0[comp] + b1[comp] * x + bw * w + rnorm(n, 0, sg[comp])
d4 <- data.frame(y = y, x = x, w = w, true_comp = comp)
run_case("shared_sim", d4, "y ~ x  (fixed/shared: ~ w)",
         "flexmix(y ~ x, data = d, k = 2, model = FLXMRglmfix(fixed = ~ w), control = CTL)",
         2, function() flexmix(y ~ x, data = d4, k = 2, model = FLXMRglmfix(fixed = ~ w), control = CTL),
         y = d4$y,
         truth = list(comp1 = list(intercept = 2, x = 1.5, sigma = 0.5),
                      comp2 = list(intercept = -2, x = -1, sigma = 0.7),
                      shared_w = 0.7, prior = c(0.45, 0.55)),
         notes = c("parameters(m) repeats the shared coef.w in every component column",
                   "df counts the shared coefficient once",
                   "FLXMRglmfix sigma_k = sqrt( sum_i w_ik r_ik^2 / mean_i(w_ik) / (n - p_k) ), p_k = number of coefficients entering component k INCLUDING shared ones"),
         k1_fun = function() flexmix(y ~ x + w, data = d4, k = 1, control = CTL))

## 4b. shared_intercept_sim --------------------------------------------------
set.seed(20240605)
n <- 600
x <- rnorm(n)
comp <- 1 + rbinom(n, 1, 0.5)
b1 <- c(2, -1); sg <- c(0.5, 0.8)
y <- 1 + b1[comp] * x + rnorm(n, 0, sg[comp])
d5 <- data.frame(y = y, x = x, true_comp = comp)
# check equivalent spellings of "shared intercept"
alt_calls <- list(
  A = function() flexmix(y ~ x, data = d5, k = 2, model = FLXMRglmfix(formula = ~ 0 + x, fixed = ~ 1), control = CTL),
  B = function() flexmix(y ~ 0 + x, data = d5, k = 2, model = FLXMRglmfix(fixed = ~ 1), control = CTL),
  C = function() flexmix(y ~ x, data = d5, k = 2, model = FLXMRglmfix(formula = ~ . - 1, fixed = ~ 1), control = CTL))
alt_ll <- sapply(alt_calls, function(f) { r <- best_of(f); as.numeric(logLik(r$model)) })
run_case("shared_intercept_sim", d5, "y ~ x with component formula ~ 0 + x and fixed = ~ 1",
         "flexmix(y ~ x, data = d, k = 2, model = FLXMRglmfix(formula = ~ 0 + x, fixed = ~ 1), control = CTL)",
         2, alt_calls$A, y = d5$y,
         truth = list(shared_intercept = 1, comp1 = list(x = 2, sigma = 0.5), comp2 = list(x = -1, sigma = 0.8), prior = c(0.5, 0.5)),
         notes = c("shared intercept: FLXMRglmfix(formula = ~ 0 + x, fixed = ~ 1); the model's fullformula becomes y ~ x - 1 and the intercept enters the fixed part",
                   "equivalent spellings giving the identical best logLik: (B) flexmix(y ~ 0 + x, model = FLXMRglmfix(fixed = ~ 1)); (C) FLXMRglmfix(formula = ~ . - 1, fixed = ~ 1)",
                   "NOTE: plain FLXMRglmfix(fixed = ~ 1) with y ~ x would put the intercept in BOTH parts (not what we want)"),
         extra = list(alternative_spellings_best_logLik = as.list(alt_ll)),
         k1_fun = function() flexmix(y ~ x, data = d5, k = 1, control = CTL))

## 5. combined_sim -----------------------------------------------------------
set.seed(20240606)
G <- 120; m_per <- 5
id <- rep(seq_len(G), each = m_per)
zg <- rnorm(G)
gcomp <- 1 + rbinom(G, 1, plogis(0.2 + 1.2 * zg))
comp <- gcomp[id]
x <- rnorm(G * m_per); w <- rnorm(G * m_per)
b0 <- c(1, -1); b1 <- c(1.5, 0.5); bw <- 0.5; sg <- c(0.6, 0.8)
y <- b0[comp] + b1[comp] * x + bw * w + rnorm(G * m_per, 0, sg[comp])
d6 <- data.frame(y = y, x = x, w = w, z = zg[id], id = id, true_comp = comp)
# how does flexmix react to a concomitant varying within a group?
d6bad <- d6; d6bad$zbad <- rnorm(nrow(d6))
within_group_msg <- tryCatch({
  flexmix(y ~ x | id, data = d6bad, k = 2, concomitant = FLXPmultinom(~ zbad), control = CTL); "no error"
}, error = function(e) err_msg(e))
run_case("combined_sim", d6, "y ~ x | id  (fixed/shared: ~ w; concomitant ~ z)",
         "flexmix(y ~ x | id, data = d, k = 2, model = FLXMRglmfix(fixed = ~ w), concomitant = FLXPmultinom(~ z), control = CTL)",
         2, function() flexmix(y ~ x | id, data = d6, k = 2, model = FLXMRglmfix(fixed = ~ w),
                               concomitant = FLXPmultinom(~ z), control = CTL),
         y = d6$y, group_var = "id",
         truth = list(comp1 = list(intercept = 1, x = 1.5, sigma = 0.6),
                      comp2 = list(intercept = -1, x = 0.5, sigma = 0.8),
                      shared_w = 0.5,
                      concomitant_comp2_vs_comp1 = list(`(Intercept)` = 0.2, z = 1.2)),
         notes = c("z is constant within each id (group-level concomitant); concomitant multinomial is fitted on one row per group",
                   sprintf("a concomitant varying within a group is rejected by flexmix with error: '%s'", within_group_msg)),
         extra = list(within_group_varying_concomitant_error = within_group_msg),
         k1_fun = function() flexmix(y ~ x + w, data = d6, k = 1, control = CTL))

## 6. real data --------------------------------------------------------------
data("NregFix", package = "flexmix")
NF <- data.frame(x1 = NregFix$x1, x2 = NregFix$x2, w = NregFix$w,
                 y = as.numeric(NregFix$y), class = NregFix$class)
real_notes <- c("NregFix: x2 and w are factors with levels '0','1' (treatment contrasts, '0' reference -> dummy columns x21 / w1); y was a 1-column matrix in the package, stored here as a plain column",
                "'class' is the true simulated class shipped with the data set (not used in the fit)")

run_case("NregFix_shared", NF, "y ~ x1  (fixed/shared: ~ x2)",
         "flexmix(y ~ x1, data = NregFix, k = 3, model = FLXMRglmfix(fixed = ~ x2), control = CTL)",
         3, function() flexmix(y ~ x1, data = NF, k = 3, model = FLXMRglmfix(fixed = ~ x2), control = CTL),
         y = NF$y,
         notes = c(real_notes, "?NregFix's own example uses fixed = ~ x2 (plus nesting and concomitant ~ w); this case drops nesting and concomitant"),
         k1_fun = function() flexmix(y ~ x1 + x2, data = NF, k = 1, control = CTL))

run_case("NregFix_concomitant", NF, "y ~ x1 + x2  (concomitant ~ w)",
         "flexmix(y ~ x1 + x2, data = NregFix, k = 3, concomitant = FLXPmultinom(~ w), control = CTL)",
         3, function() flexmix(y ~ x1 + x2, data = NF, k = 3, concomitant = FLXPmultinom(~ w), control = CTL),
         y = NF$y, notes = real_notes,
         k1_fun = function() flexmix(y ~ x1 + x2, data = NF, k = 1, control = CTL))

run_case("NregFix_shared_concomitant", NF, "y ~ x1  (fixed/shared: ~ x2; concomitant ~ w)",
         "flexmix(y ~ x1, data = NregFix, k = 3, model = FLXMRglmfix(fixed = ~ x2), concomitant = FLXPmultinom(~ w), control = CTL)",
         3, function() flexmix(y ~ x1, data = NF, k = 3, model = FLXMRglmfix(fixed = ~ x2),
                               concomitant = FLXPmultinom(~ w), control = CTL),
         y = NF$y, notes = c(real_notes, "the ?NregFix example model without its nesting restriction"),
         k1_fun = function() flexmix(y ~ x1 + x2, data = NF, k = 1, control = CTL))

run_case("NregFix_doc_nested", NF, "y ~ 1; FLXMRglmfix(~ 1, fixed = ~ x2, nested = list(k = c(2, 1), formula = c(~ x1, ~ 0))); concomitant ~ w",
         "flexmix(y ~ 1, data = NregFix, k = 3, model = FLXMRglmfix(~ 1, fixed = ~ x2, nested = list(k = c(2, 1), formula = c(~ x1, ~ 0))), concomitant = FLXPmultinom(~ w), control = CTL)",
         3, function() flexmix(y ~ 1, data = NF, k = 3,
                               model = FLXMRglmfix(~ 1, fixed = ~ x2, nested = list(k = c(2, 1), formula = c(~ x1, ~ 0))),
                               concomitant = FLXPmultinom(~ w), control = CTL),
         y = NF$y,
         notes = c(real_notes, "exact model of example(NregFix) (which uses initFlexmix(nrep = 5)); components 1-2 share a common x1 slope (nested), component 3 has no x1 term; x2 shared by all. Optional: only relevant if bayes_mlr supports nested sharing"),
         k1_fun = NULL)

data("NPreg", package = "flexmix")
NP <- data.frame(x = NPreg$x, yn = NPreg$yn, class = NPreg$class,
                 id1 = as.integer(as.character(NPreg$id1)), id2 = as.integer(as.character(NPreg$id2)))
run_case("NPreg_grouped", NP, "yn ~ x + I(x^2) | id2",
         "flexmix(yn ~ x + I(x^2) | id2, data = NPreg, k = 2, control = CTL)",
         2, function() flexmix(yn ~ x + I(x^2) | id2, data = NP, k = 2, control = CTL),
         y = NP$yn, group_var = "id2",
         notes = c("NPreg columns kept: x, yn, class (true), id1 (100 groups of 2), id2 (50 groups of 4); yp/yb omitted",
                   "design: intercept, x, x^2 (I(x^2)) -- build the square yourself on the Python side"),
         k1_fun = function() flexmix(yn ~ x + I(x^2), data = NP, k = 1, control = CTL))

## 7. real data from R's datasets: growth curves of 50 chicks on 4 diets -------------------
CW <- data.frame(weight = as.numeric(ChickWeight$weight), Time = as.numeric(ChickWeight$Time),
                 Chick = as.integer(as.character(ChickWeight$Chick)),
                 Diet = as.integer(as.character(ChickWeight$Diet)))
run_case("ChickWeight_grouped_concomitant", CW, "weight ~ Time | Chick  (concomitant ~ factor(Diet))",
         "flexmix(weight ~ Time | Chick, data = ChickWeight, k = 2, concomitant = FLXPmultinom(~ factor(Diet)), control = CTL)",
         2, function() flexmix(weight ~ Time | Chick, data = CW, k = 2,
                               concomitant = FLXPmultinom(~ factor(Diet)), control = CTL),
         y = CW$weight, group_var = "Chick",
         notes = c("R datasets::ChickWeight (real data, Crowder & Hand 1990): 578 weighings of 50 chicks; Diet is constant within a chick, so it can be a group-level concomitant",
                   "Chick and Diet stored as integers; the concomitant is factor(Diet), treatment contrasts with Diet 1 the reference (columns factor(Diet)2..4)"),
         k1_fun = function() flexmix(weight ~ Time, data = CW, k = 1, control = CTL))

cat(sprintf("total elapsed: %.1f s\n", proc.time()[["elapsed"]] - t_start))
