"""Deep Q-learning (DQN) on gymnasium environments."""
