"""Pure losses and advantages: tensors and masks in, a tensor or ``(loss, stats)`` out.

No config, no device logic, no model: the recipes (`codefalcon.rl.recipes`) compute log-probs and
call these. The public names are re-exported by `codefalcon.rl`.
"""
