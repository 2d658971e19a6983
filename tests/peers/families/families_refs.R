# families_refs.R -- R reference fits (flexmix, and mixtools where it applies) for the
# Poisson and binomial component families of bayes_mlr: offsets (exposure), binomial trials,
# concomitant, grouped and shared (FLXMRglmfix) models; real (flexmix's seizure, patent,
# betablocker) and simulated data.
#
# Usage:  Rscript families_refs.R OUTDIR
#
# For each case writes
#   OUTDIR/<case>.csv   the data (row.names = FALSE)
#   OUTDIR/<case>.json  fit summary (see README.md next to this script)
# Only calls flexmix / mixtools; nothing is copied from them.

suppressMessages({
  library(flexmix)
  library(mixtools)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
OUTDIR <- if (length(args) >= 1) args[1] else "out"
dir.create(OUTDIR, showWarnings = FALSE, recursive = TRUE)

SEEDS <- 1:30
CTL <- list(tolerance = 1e-10, iter.max = 5000)   # minprior stays at flexmix's default 0.05
MIX_EPS <- 1e-10
MIX_MAXIT <- 10000
t_start <- proc.time()[["elapsed"]]

## ---------------------------------------------------------------- helpers --
named_list <- function(v) {               # named numeric vector -> JSON object
  if (is.null(v)) return(NULL)
  as.list(setNames(as.numeric(v), names(v)))
}
mat_to_list <- function(M) {               # matrix -> {colname: {rowname: value}}
  if (is.null(M)) return(NULL)
  M <- as.matrix(M)
  out <- lapply(seq_len(ncol(M)), function(j) as.list(setNames(as.numeric(M[, j]), rownames(M))))
  names(out) <- colnames(M)
  out
}
coefmat_to_list <- function(cm) {          # flexmix Coefmat -> list(estimate=, se=)
  cm <- as.matrix(cm@.Data)
  rn <- rownames(cm)
  list(rownames = I(rn),
       estimate = as.list(setNames(cm[, 1], rn)),
       std_error = as.list(setNames(cm[, 2], rn)))
}
err_msg <- function(e) conditionMessage(e)

# fit `fit_fun()` (returning a flexmix object) over SEEDS; keep the highest logLik among the
# fits that kept all k components (flexmix drops a component whose prior falls below minprior)
best_of <- function(fit_fun, k) {
  lls <- rep(NA_real_, length(SEEDS)); ks <- rep(NA_integer_, length(SEEDS))
  conv <- rep(NA, length(SEEDS)); iters <- rep(NA_integer_, length(SEEDS))
  errs <- character(0)
  best <- NULL; best_seed <- NA
  for (i in seq_along(SEEDS)) {
    set.seed(SEEDS[i])
    m <- tryCatch(fit_fun(), error = function(e) e)
    if (inherits(m, "error")) { errs <- c(errs, sprintf("seed %d: %s", SEEDS[i], err_msg(m))); next }
    lls[i] <- as.numeric(logLik(m)); ks[i] <- m@k; conv[i] <- m@converged; iters[i] <- m@iter
    if (m@k == k && (is.null(best) || lls[i] > as.numeric(logLik(best)))) { best <- m; best_seed <- SEEDS[i] }
  }
  list(model = best, seed = best_seed, logliks = lls, k_final = ks,
       converged = conv, iter = iters, errors = errs)
}

# polish: re-maximise flexmix's own observed-data log-lik (FLXlogLikfun) from the refit
# estimates with a much tighter BFGS tolerance.  For GLM components the EM fixed point already
# is the MLE (weighted glm.fit M-steps are exact); the concomitant M-step (nnet) is not exact.
polish <- function(m, start) {
  f <- FLXlogLikfun(m)
  g <- tryCatch(FLXgradlogLikfun(m), error = function(e) NULL)
  grad_kind <- "analytic (FLXgradlogLikfun)"
  if (is.null(g)) {
    grad_kind <- "central differences, h = 1e-6"
    g <- function(p) sapply(seq_along(p), function(i) {
      h <- 1e-6; e <- replace(numeric(length(p)), i, h); (f(p + e) - f(p - e)) / (2 * h) })
  }
  op <- tryCatch(optim(start, f, g, method = "BFGS",
                       control = list(fnscale = -1, reltol = 1e-15, maxit = 20000)),
                 error = function(e) e)
  if (inherits(op, "error")) return(list(error = err_msg(op)))
  gr <- g(op$par)
  list(method = "optim BFGS on FLXlogLikfun(m) (flexmix's log-lik; priors as alpha = log(pi_k/pi_1) or multinomial-logit concomitant), reltol = 1e-15, start = refit coef",
       logLik = op$value, convergence = op$convergence, counts = as.list(op$counts),
       max_abs_gradient = max(abs(gr)), gradient_kind = grad_kind,
       coef_names = I(names(op$par)), coef = unname(op$par))
}

# mixtools: best of SEEDS runs of `fit_fun()` (poisregmixEM / logisregmixEM), highest loglik
mixtools_best <- function(fit_fun, call_desc, xnames, loglik_check) {
  lls <- rep(NA_real_, length(SEEDS)); rst <- rep(NA_integer_, length(SEEDS))
  its <- rep(NA_integer_, length(SEEDS)); errs <- character(0)
  best <- NULL; best_seed <- NA
  for (i in seq_along(SEEDS)) {
    set.seed(SEEDS[i])
    out <- NULL
    junk <- capture.output(out <- tryCatch(fit_fun(), error = function(e) e))
    if (inherits(out, "error")) { errs <- c(errs, sprintf("seed %d: %s", SEEDS[i], err_msg(out))); next }
    lls[i] <- out$loglik; rst[i] <- out$restarts; its[i] <- length(out$all.loglik)
    if (is.null(best) || lls[i] > best$loglik) { best <- out; best_seed <- SEEDS[i] }
  }
  beta <- best$beta; rownames(beta) <- xnames
  K <- ncol(beta)
  comps <- lapply(seq_len(K), function(j) list(
    name = paste0("comp.", j), prior = best$lambda[j],
    coef = as.list(setNames(beta[, j], xnames))))
  tol <- 1e-6
  list(package_version = as.character(packageVersion("mixtools")),
       call = call_desc, epsilon = MIX_EPS, maxit = MIX_MAXIT,
       seeds = SEEDS, best_seed = best_seed, logLik = best$loglik,
       logLik_recomputed = loglik_check(best),
       logliks_per_seed = lls, restarts_per_seed = rst, iterations_per_seed = its,
       n_seeds_at_best = sum(abs(lls - best$loglik) < tol, na.rm = TRUE), n_seeds_at_best_tol = tol,
       fit_errors = I(errs),
       df = K * nrow(beta) + K - 1,
       components = comps,
       note = "mixtools gives no standard errors (boot.se only); loglik includes the full dpois / dbinom constants, as flexmix's")
}

run_case <- function(case, data, formula_str, call_desc, k, fit_fun, python,
                     truth = NULL, notes = NULL, group_var = NULL,
                     k1_fun = NULL, mixtools = NULL, extra = NULL) {
  t0 <- proc.time()[["elapsed"]]
  write.csv(data, file.path(OUTDIR, paste0(case, ".csv")), row.names = FALSE)
  res <- best_of(fit_fun, k)
  m <- res$model
  ll <- logLik(m)
  comp_names <- paste0("Comp.", seq_len(m@k))
  par_reg <- parameters(m)                      # rows coef.* ; cols Comp.j
  has_conc <- is(m@concomitant, "FLXPmultinom")
  par_conc <- if (has_conc) parameters(m, which = "concomitant") else NULL
  pri <- prior(m)
  shared_names <- NULL
  if (is(m@model[[1]], "FLXMRglmfix")) {         # coefficients equal in every component
    same <- apply(par_reg, 1, function(r) all(r == r[1]))
    shared_names <- sub("^coef\\.", "", rownames(par_reg)[same])
  }

  ## refit(): BFGS (optim) on the observed-data log-lik from the EM solution; SEs from the Hessian
  rf <- tryCatch(refit(m), error = function(e) e)
  refit_out <- if (inherits(rf, "error")) list(error = err_msg(rf)) else {
    comps <- lapply(rf@components[[1]], coefmat_to_list)
    conc <- tryCatch(lapply(rf@concomitant, coefmat_to_list), error = function(e) NULL)
    list(method = "refit(m) (method 'optim'): BFGS on the observed-data log-lik from the EM estimates; SE = sqrt(diag(vcov)), vcov = inverse of minus the Hessian",
         regression = comps,
         concomitant = conc,
         concomitant_note = if (!has_conc)
           "no concomitant: the 'prior' row of Comp.k (refit coef name concomitant_Comp.k.alpha) is alpha_k = log(pi_k/pi_1), k = 2..K" else
           "multinomial logit coefficients of Comp.k vs Comp.1 (reference, fixed at 0), k = 2..K",
         coef_names = I(names(rf@coef)),            # may repeat (FLXMRglmfix: 'model.1_(Intercept)' K times)
         coef = unname(rf@coef),
         se = unname(sqrt(diag(rf@vcov))),
         vcov = unname(rf@vcov),
         loglik_at_refit_coef = tryCatch(FLXlogLikfun(m)(rf@coef), error = function(e) NA_real_),
         polished_mle = polish(m, rf@coef))
  }

  k1 <- NULL
  if (!is.null(k1_fun)) {
    set.seed(1)
    m1 <- tryCatch(k1_fun(), error = function(e) e)
    k1 <- if (inherits(m1, "error")) list(error = err_msg(m1)) else
      list(logLik = as.numeric(logLik(m1)), df = attr(logLik(m1), "df"), BIC = BIC(m1),
           parameters = mat_to_list(parameters(m1)))
  }

  components <- lapply(seq_len(m@k), function(j) {
    cn <- comp_names[j]
    pr <- par_reg[, j]
    cf <- pr[grepl("^coef\\.", names(pr))]; names(cf) <- sub("^coef\\.", "", names(cf))
    reg <- refit_out$regression[[cn]]
    cc <- if (!is.null(refit_out$concomitant)) refit_out$concomitant[[cn]] else NULL
    list(name = cn,
         prior = unname(pri[j]),
         coef = as.list(cf),
         concomitant_coef = if (has_conc) as.list(setNames(par_conc[, j], rownames(par_conc))) else NULL,
         se = if (!is.null(reg)) reg$std_error else NULL,
         refit_estimate = if (!is.null(reg)) reg$estimate else NULL,
         se_concomitant = if (has_conc && !is.null(cc)) cc$std_error else NULL,
         se_log_prior_ratio_vs_Comp1 = if (!has_conc && !is.null(cc)) cc$std_error[["prior"]] else NULL,
         cluster_size = unname(m@size[j]))
  })

  tol <- if (has_conc) 1e-4 else 1e-6   # nnet concomitant M-step is inexact (~1e-5)
  out <- list(
    case = case,
    formula = formula_str,
    call = call_desc,
    family = m@model[[1]]@family,
    model_class = class(m@model[[1]])[1],
    flexmix_version = as.character(packageVersion("flexmix")),
    R_version = R.version.string,
    K = k, K_final = m@k,
    n = nrow(data),
    n_groups = if (!is.null(group_var)) length(unique(data[[group_var]])) else NULL,
    group_var = group_var,
    control = CTL, minprior = m@control@minprior,
    seeds = SEEDS, best_seed = res$seed,
    logliks_per_seed = res$logliks,
    k_final_per_seed = res$k_final,
    iter_per_seed = res$iter,
    n_seeds_at_best = sum(abs(res$logliks - as.numeric(ll)) < tol, na.rm = TRUE),
    n_seeds_at_best_tol = tol,
    fit_errors = I(res$errors),
    converged = m@converged, iter = m@iter,
    logLik = as.numeric(ll), df = attr(ll, "df"), nobs = attr(ll, "nobs"),
    BIC = BIC(m), AIC = AIC(m),
    prior = as.numeric(pri),
    parameters = mat_to_list(par_reg),
    parameters_concomitant = mat_to_list(par_conc),
    shared_coef_names = if (!is.null(shared_names)) I(shared_names) else NULL,
    concomitant_model = class(m@concomitant)[1],
    components = components,
    refit = refit_out,
    K1 = k1,
    mixtools = mixtools,
    python = python,
    truth = truth,
    notes = if (!is.null(notes)) I(notes) else NULL,
    extra = extra,
    runtime_s = proc.time()[["elapsed"]] - t0
  )
  writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, null = "null", na = "null", pretty = TRUE),
             file.path(OUTDIR, paste0(case, ".json")))
  cat(sprintf("%-28s K=%d logLik=%.6f df=%d BIC=%.4f seeds_at_best=%d%s  (%.1fs)\n",
              case, m@k, as.numeric(ll), attr(ll, "df"), BIC(m), out$n_seeds_at_best,
              if (!is.null(mixtools)) sprintf(" mixtools=%.6f (%d seeds)", mixtools$logLik, mixtools$n_seeds_at_best) else "",
              out$runtime_s))
  invisible(out)
}

py <- function(formula, family, offset = NULL, trials = NULL, concomitant = NULL, shared = NULL,
               rename = setNames(list(), character(0)), coding = character(0)) {
  list(from_formula = list(formula = formula, family = family, offset = offset, trials = trials,
                           concomitant = concomitant, shared = shared),
       rename = rename, column_coding = I(coding))
}

## ================================================================== cases ==

## 1. seizure_poisson (real) --------------------------------------------------
data("seizure", package = "flexmix")
SZ <- data.frame(Seizures = as.integer(seizure$Seizures), Treatment = as.character(seizure$Treatment),
                 Day = as.numeric(seizure$Day), Hours = as.numeric(seizure$Hours))
run_case("seizure_poisson", SZ, "Seizures ~ Treatment * log(Day), offset log(Hours)",
         "flexmix(Seizures ~ Treatment * log(Day), data = seizure, k = 2, model = FLXMRglm(family = \"poisson\", offset = log(seizure$Hours)), control = list(tolerance = 1e-10, iter.max = 5000))",
         2, function() flexmix(Seizures ~ Treatment * log(Day), data = SZ, k = 2,
                               model = FLXMRglm(family = "poisson", offset = log(SZ$Hours)), control = CTL),
         python = py("Seizures ~ Treatment * np.log(Day)", "poisson", offset = "np.log(Hours)",
                     rename = list(TreatmentYes = "Treatment[T.Yes]", `log(Day)` = "np.log(Day)",
                                   `TreatmentYes:log(Day)` = "Treatment[T.Yes]:np.log(Day)"),
                     coding = c("Treatment is a string column with levels 'No' (reference, baseline period) and 'Yes' (treatment period): R factor, treatment contrasts",
                                "TreatmentYes = 1.0 * (Treatment == 'Yes')  (formulaic: Treatment[T.Yes])",
                                "log(Day) = natural log of Day; the interaction column is TreatmentYes * log(Day)",
                                "offset = log(Hours) (observation period length in hours), coefficient fixed at 1")),
         notes = c("flexmix data(seizure): daily seizure counts of one patient (Wang et al. 1996), 140 days; the model of ?seizure / the flexmix vignette",
                   "Poisson log-lik includes -lgamma(y + 1) (dpois)"),
         k1_fun = function() flexmix(Seizures ~ Treatment * log(Day), data = SZ, k = 1,
                                     model = FLXMRglm(family = "poisson", offset = log(SZ$Hours)), control = CTL))

## 2. patent_concomitant (real) -----------------------------------------------
data("patent", package = "flexmix")
PT <- data.frame(Patents = as.integer(patent$Patents), RDS = patent$RDS, lgRD = patent$lgRD)
run_case("patent_concomitant", PT, "Patents ~ lgRD  (concomitant ~ RDS)",
         "flexmix(Patents ~ lgRD, k = 3, data = patent, model = FLXMRglm(family = \"poisson\"), concomitant = FLXPmultinom(~ RDS), control = list(tolerance = 1e-10, iter.max = 5000))",
         3, function() flexmix(Patents ~ lgRD, k = 3, data = PT, model = FLXMRglm(family = "poisson"),
                               concomitant = FLXPmultinom(~ RDS), control = CTL),
         python = py("Patents ~ lgRD", "poisson", concomitant = "~ RDS",
                     coding = c("all columns numeric, used as they are; lgRD = log(R&D spending) as shipped with the data, RDS = R&D spending / sales",
                                "concomitant: multinomial logit on (Intercept, RDS), Comp.1 the reference")),
         notes = c("flexmix data(patent): 70 pharmaceutical and biomedical companies (Wang, Cockburn and Puterman 1998); the model of ?patent",
                   "the Company column is left out of the CSV"),
         k1_fun = function() flexmix(Patents ~ lgRD, k = 1, data = PT, model = FLXMRglm(family = "poisson"), control = CTL))

## 3. betablocker (real), grouped by center, shared treatment effect ----------
data("betablocker", package = "flexmix")
BB <- data.frame(Deaths = as.integer(betablocker$Deaths), Total = as.integer(betablocker$Total),
                 Center = as.integer(betablocker$Center), Treatment = as.character(betablocker$Treatment))
bb_coding <- c("Deaths = number of deaths (successes of the binomial), Total = number of patients (trials); flexmix response cbind(Deaths, Total - Deaths)",
               "Treatment is a string column with levels 'Control' (reference) and 'Treated': R factor, treatment contrasts",
               "TreatmentTreated = 1.0 * (Treatment == 'Treated')  (formulaic: Treatment[T.Treated]), one coefficient shared by all components",
               "each component has its own intercept (log-odds of death in the control arm)")
bb_rename <- list(TreatmentTreated = "Treatment[T.Treated]")
run_case("betablocker_grouped_shared", BB, "cbind(Deaths, Total - Deaths) ~ 1 | Center  (fixed/shared: ~ Treatment)",
         "flexmix(cbind(Deaths, Total - Deaths) ~ 1 | Center, data = betablocker, k = 3, model = FLXMRglmfix(family = \"binomial\", fixed = ~ Treatment), control = list(tolerance = 1e-10, iter.max = 5000))",
         3, function() flexmix(cbind(Deaths, Total - Deaths) ~ 1 | Center, data = BB, k = 3,
                               model = FLXMRglmfix(family = "binomial", fixed = ~ Treatment), control = CTL),
         group_var = "Center",
         python = py("Deaths ~ 1 | Center", "binomial", trials = "Total", shared = "~ Treatment",
                     rename = bb_rename,
                     coding = c(bb_coding, "grouping: the two rows (arms) of a Center share one component")),
         notes = c("flexmix data(betablocker): 22 centers x 2 arms (Aitkin 1999); the model of the flexmix vignette / Gruen & Leisch (2008)",
                   "parameters(m) repeats the shared coef.TreatmentTreated in every component column; df counts it once",
                   "refit()'s coef names repeat 'model.1_(Intercept)' once per component (order: shared first, then Comp.1..K intercepts, then alphas): read refit$coef by position",
                   "binomial log-lik includes log choose(Total, Deaths) (dbinom)"),
         k1_fun = function() flexmix(cbind(Deaths, Total - Deaths) ~ Treatment, data = BB, k = 1,
                                     model = FLXMRglm(family = "binomial"), control = CTL))

run_case("betablocker_shared", BB, "cbind(Deaths, Total - Deaths) ~ 1  (fixed/shared: ~ Treatment), no grouping",
         "flexmix(cbind(Deaths, Total - Deaths) ~ 1, data = betablocker, k = 3, model = FLXMRglmfix(family = \"binomial\", fixed = ~ Treatment), control = list(tolerance = 1e-10, iter.max = 5000))",
         3, function() flexmix(cbind(Deaths, Total - Deaths) ~ 1, data = BB, k = 3,
                               model = FLXMRglmfix(family = "binomial", fixed = ~ Treatment), control = CTL),
         python = py("Deaths ~ 1", "binomial", trials = "Total", shared = "~ Treatment",
                     rename = bb_rename, coding = c(bb_coding, "no grouping: each row (center x arm) has its own latent label")),
         notes = c("same data and model as betablocker_grouped_shared but without '| Center'",
                   "refit()'s coef names repeat 'model.1_(Intercept)' once per component: read refit$coef by position"),
         k1_fun = function() flexmix(cbind(Deaths, Total - Deaths) ~ Treatment, data = BB, k = 1,
                                     model = FLXMRglm(family = "binomial"), control = CTL))

## 4a. poisson_sim: exposure offset (flexmix only; mixtools has no offset) -----
set.seed(20250401)
n <- 600
x <- rnorm(n); h <- runif(n, 0.5, 2)
comp <- sample(1:2, n, replace = TRUE, prob = c(0.4, 0.6))
b0 <- c(0.5, 2.0); b1 <- c(1.0, -0.5)
y <- rpois(n, exp(b0[comp] + b1[comp] * x + log(h)))
PS <- data.frame(y = y, x = x, h = h, true_comp = comp)
run_case("poisson_sim", PS, "y ~ x, offset log(h)",
         "flexmix(y ~ x, data = d, k = 2, model = FLXMRglm(family = \"poisson\", offset = log(d$h)), control = list(tolerance = 1e-10, iter.max = 5000))",
         2, function() flexmix(y ~ x, data = PS, k = 2, model = FLXMRglm(family = "poisson", offset = log(PS$h)), control = CTL),
         python = py("y ~ x", "poisson", offset = "np.log(h)",
                     coding = c("x numeric as is; offset = log(h), h = exposure ~ U(0.5, 2), coefficient fixed at 1")),
         truth = list(prior = c(0.4, 0.6), comp1 = list(`(Intercept)` = 0.5, x = 1.0),
                      comp2 = list(`(Intercept)` = 2.0, x = -0.5),
                      model = "y ~ Poisson(h * exp(b0_j + b1_j x)), j ~ Categorical(0.4, 0.6), x ~ N(0,1), h ~ U(0.5, 2); set.seed(20250401)"),
         notes = c("mixtools::poisregmixEM has no offset argument, so this case has no mixtools fit; see poisson_sim_nooffset",
                   "true_comp is the simulated label (not used in the fit)"),
         k1_fun = function() flexmix(y ~ x, data = PS, k = 1, model = FLXMRglm(family = "poisson", offset = log(PS$h)), control = CTL))

## 4b. poisson_sim_nooffset: same design, h = 1; flexmix and mixtools ---------
set.seed(20250402)
n <- 600
x <- rnorm(n)
comp <- sample(1:2, n, replace = TRUE, prob = c(0.4, 0.6))
y <- rpois(n, exp(b0[comp] + b1[comp] * x))
PN <- data.frame(y = y, x = x, true_comp = comp)
mix_pn <- mixtools_best(
  function() poisregmixEM(PN$y, PN$x, k = 2, addintercept = TRUE, epsilon = MIX_EPS, maxit = MIX_MAXIT),
  "poisregmixEM(y, x, k = 2, addintercept = TRUE, epsilon = 1e-10, maxit = 10000)",
  c("(Intercept)", "x"),
  function(o) sum(log(dpois(PN$y, exp(cbind(1, PN$x) %*% o$beta)) %*% o$lambda)))
run_case("poisson_sim_nooffset", PN, "y ~ x",
         "flexmix(y ~ x, data = d, k = 2, model = FLXMRglm(family = \"poisson\"), control = list(tolerance = 1e-10, iter.max = 5000))",
         2, function() flexmix(y ~ x, data = PN, k = 2, model = FLXMRglm(family = "poisson"), control = CTL),
         python = py("y ~ x", "poisson", coding = "x numeric as is; no offset"),
         truth = list(prior = c(0.4, 0.6), comp1 = list(`(Intercept)` = 0.5, x = 1.0),
                      comp2 = list(`(Intercept)` = 2.0, x = -0.5),
                      model = "y ~ Poisson(exp(b0_j + b1_j x)), j ~ Categorical(0.4, 0.6), x ~ N(0,1); set.seed(20250402)"),
         mixtools = mix_pn,
         notes = c("the offset-free twin of poisson_sim, so that mixtools::poisregmixEM (no offset argument) can be compared too",
                   "true_comp is the simulated label (not used in the fit)"),
         k1_fun = function() flexmix(y ~ x, data = PN, k = 1, model = FLXMRglm(family = "poisson"), control = CTL))

## 5. binomial_sim: binomial with trials; flexmix and mixtools::logisregmixEM(N = trials)
set.seed(20250403)
n <- 500
x <- rnorm(n)
mt <- sample(5:30, n, replace = TRUE)
comp <- sample(1:2, n, replace = TRUE, prob = c(0.45, 0.55))
a0 <- c(-1, 1); a1 <- c(1.5, -1)
y <- rbinom(n, mt, plogis(a0[comp] + a1[comp] * x))
BS <- data.frame(y = y, m = mt, x = x, true_comp = comp)
mix_bs <- mixtools_best(
  function() logisregmixEM(BS$y, BS$x, N = BS$m, k = 2, addintercept = TRUE, epsilon = MIX_EPS, maxit = MIX_MAXIT),
  "logisregmixEM(y, x, N = m, k = 2, addintercept = TRUE, epsilon = 1e-10, maxit = 10000)",
  c("(Intercept)", "x"),
  function(o) sum(log(sapply(1:2, function(j) dbinom(BS$y, BS$m, plogis(cbind(1, BS$x) %*% o$beta[, j]))) %*% o$lambda)))
run_case("binomial_sim", BS, "cbind(y, m - y) ~ x",
         "flexmix(cbind(y, m - y) ~ x, data = d, k = 2, model = FLXMRglm(family = \"binomial\"), control = list(tolerance = 1e-10, iter.max = 5000))",
         2, function() flexmix(cbind(y, m - y) ~ x, data = BS, k = 2, model = FLXMRglm(family = "binomial"), control = CTL),
         python = py("y ~ x", "binomial", trials = "m",
                     coding = c("y = successes, m = trials (5..30); flexmix response cbind(y, m - y); x numeric as is")),
         truth = list(prior = c(0.45, 0.55), comp1 = list(`(Intercept)` = -1, x = 1.5),
                      comp2 = list(`(Intercept)` = 1, x = -1),
                      model = "y ~ Binomial(m, plogis(a0_j + a1_j x)), j ~ Categorical(0.45, 0.55), m ~ sample(5:30), x ~ N(0,1); set.seed(20250403)"),
         mixtools = mix_bs,
         notes = c("the logistic case of the brief: mixtools::logisregmixEM takes the trials as N, so it is fitted to these binomial data (stored under 'mixtools')",
                   "no Bernoulli (trials = 1) case: with one 0/1 draw per row the mixture only determines P(y = 1 | x) = sum_k pi_k plogis(eta_k(x)), so the components are not identified in general",
                   "binomial log-lik includes log choose(m, y) (dbinom); so does mixtools'",
                   "true_comp is the simulated label (not used in the fit)"),
         k1_fun = function() flexmix(cbind(y, m - y) ~ x, data = BS, k = 1, model = FLXMRglm(family = "binomial"), control = CTL))

## 6. poisson_shared_grouped_sim: Poisson, grouped by id, shared slope of w --------
set.seed(20250404)
G <- 100; m_per <- 5
id <- rep(seq_len(G), each = m_per)
gcomp <- sample(1:2, G, replace = TRUE, prob = c(0.4, 0.6))
comp <- gcomp[id]
x <- rnorm(G * m_per); w <- rnorm(G * m_per)
c0 <- c(0.5, 1.5); c1 <- c(0.8, -0.4); cw <- 0.3
y <- rpois(G * m_per, exp(c0[comp] + c1[comp] * x + cw * w))
PG <- data.frame(y = y, x = x, w = w, id = id, true_comp = comp)
run_case("poisson_shared_grouped_sim", PG, "y ~ x | id  (fixed/shared: ~ w)",
         "flexmix(y ~ x | id, data = d, k = 2, model = FLXMRglmfix(family = \"poisson\", fixed = ~ w), control = list(tolerance = 1e-10, iter.max = 5000))",
         2, function() flexmix(y ~ x | id, data = PG, k = 2, model = FLXMRglmfix(family = "poisson", fixed = ~ w), control = CTL),
         group_var = "id",
         python = py("y ~ x | id", "poisson", shared = "~ w",
                     coding = c("x, w numeric as is; w has one coefficient shared by both components; the 5 rows of an id share one component")),
         truth = list(group_prior = c(0.4, 0.6), comp1 = list(`(Intercept)` = 0.5, x = 0.8),
                      comp2 = list(`(Intercept)` = 1.5, x = -0.4), shared_w = 0.3,
                      model = "100 ids x 5 rows; y ~ Poisson(exp(c0_j + c1_j x + 0.3 w)), j per id ~ Categorical(0.4, 0.6); set.seed(20250404)"),
         notes = c("refit()'s coef names: 'model.1_w' (shared) then per component 'model.1_(Intercept)', 'model.1_x' repeated: read refit$coef by position",
                   "true_comp is the simulated label (not used in the fit)"),
         k1_fun = function() flexmix(y ~ x + w, data = PG, k = 1, model = FLXMRglm(family = "poisson"), control = CTL))

cat(sprintf("total elapsed: %.1f s\n", proc.time()[["elapsed"]] - t_start))
