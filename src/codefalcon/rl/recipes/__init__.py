"""One recipe per algorithm, each readable top to bottom: setup, then its step (sample -> execute ->
reward -> advantage -> loss -> update), run by `codefalcon.rl.train.train_loop`.

- `grpo`: GRPO and RLOO (the advantage function is the only difference);
- `ppo`: PPOCoder's PPO with a value head, GAE and an adaptive KL penalty;
- `coderl`: CodeRL's critic-weighted policy gradient against a greedy baseline, plus CE;
- `falcon`: FALCON's meta-RL (memory in the prompts, inner adaptation per task, Reptile).

They share functions, not a base class: `codefalcon.rl.session` (run folder, policy, executor,
checkpoints), `.rollout` (sampling, execution, rewards), `.update` (micro-batch accumulation).
To add an algorithm, copy the closest recipe and change its step.
"""
