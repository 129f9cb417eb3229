"""Hand-made programs in each language for the PPOCoder reward tests (`feedback.programs`).

REFERENCE sums ``x * k`` over a list; RENAMED is the same program with every variable renamed;
VARIANT solves the same task another way; UNRELATED returns the larger of two numbers; BROKEN has
a syntax error.
"""

from __future__ import annotations

LANGUAGES = ("python", "cpp", "java", "js")

REFERENCE = {
    "python": "def add_all(xs, k):\n    total = 0\n    for x in xs:\n        total += x * k\n    return total\n",
    "cpp": "int add_all(std::vector<int> xs, int k) {\n  int total = 0;\n  for (int x : xs) { total += x * k; }\n  return total;\n}\n",
    "java": "class S {\n  static int addAll(int[] xs, int k) {\n    int total = 0;\n    for (int x : xs) { total += x * k; }\n    return total;\n  }\n}\n",
    "js": "function addAll(xs, k) {\n  let total = 0;\n  for (const x of xs) { total += x * k; }\n  return total;\n}\n",
}
RENAMED = {
    "python": "def add_all(values, factor):\n    acc = 0\n    for v in values:\n        acc += v * factor\n    return acc\n",
    "cpp": "int add_all(std::vector<int> values, int factor) {\n  int acc = 0;\n  for (int v : values) { acc += v * factor; }\n  return acc;\n}\n",
    "java": "class S {\n  static int addAll(int[] values, int factor) {\n    int acc = 0;\n    for (int v : values) { acc += v * factor; }\n    return acc;\n  }\n}\n",
    "js": "function addAll(values, factor) {\n  let acc = 0;\n  for (const v of values) { acc += v * factor; }\n  return acc;\n}\n",
}
VARIANT = {
    "python": "def add_all(xs, k):\n    total = 0\n    i = 0\n    while i < len(xs):\n        total = total + xs[i] * k\n        i += 1\n    return total\n",
    "cpp": "int add_all(std::vector<int> xs, int k) {\n  int total = 0;\n  for (size_t i = 0; i < xs.size(); i++) total = total + xs[i] * k;\n  return total;\n}\n",
    "java": "class S {\n  static int addAll(int[] xs, int k) {\n    int total = 0;\n    for (int i = 0; i < xs.length; i++) total = total + xs[i] * k;\n    return total;\n  }\n}\n",
    "js": "function addAll(xs, k) {\n  return xs.reduce((total, x) => total + x * k, 0);\n}\n",
}
UNRELATED = {
    "python": "def bigger(a, b):\n    if a > b:\n        return a\n    return b\n",
    "cpp": "int bigger(int a, int b) {\n  if (a > b) return a;\n  return b;\n}\n",
    "java": "class M {\n  static int bigger(int a, int b) {\n    if (a > b) return a;\n    return b;\n  }\n}\n",
    "js": "const bigger = (a, b) => {\n  if (a > b) return a;\n  return b;\n};\n",
}
BROKEN = {
    "python": "def add_all(xs, k)\n    return sum(xs) * k\n",
    "cpp": "int add_all(std::vector<int> xs, int k) {\n  return xs.size() * k\n",
    "java": "class S {\n  static int addAll(int[] xs, int k) {\n    return xs.length * k\n  }\n}\n",
    "js": "function addAll(xs, k) {\n  return xs.length * k +;\n}\n",
}
