"""A Titanic-style passenger table, generated (no download): the column kinds users' files have.

``PassengerId`` counts the rows; ``Name`` is free text ("Surname, Title. First Middle"),
distinct on every row; ``Ticket`` is a code with hundreds of values; ``Cabin`` is mostly
missing and has over a hundred values; ``Survived`` depends on sex, class, age and the
title, with about 62% of passengers in the majority class (did not survive), as in the
Kaggle training file.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

_SURNAMES = [
    "Smith", "Johnson", "Brown", "Taylor", "Anderson", "Thomas", "Jackson", "White", "Harris",
    "Martin", "Thompson", "Garcia", "Martinez", "Robinson", "Clark", "Rodriguez", "Lewis", "Lee",
    "Walker", "Hall", "Allen", "Young", "Hernandez", "King", "Wright", "Lopez", "Hill", "Scott",
    "Green", "Adams", "Baker", "Gonzalez", "Nelson", "Carter", "Mitchell", "Perez", "Roberts",
    "Turner", "Phillips", "Campbell", "Parker", "Evans", "Edwards", "Collins", "Stewart",
    "Sanchez", "Morris", "Rogers", "Reed", "Cook", "Morgan", "Bell", "Murphy", "Bailey",
    "Rivera", "Cooper", "Richardson", "Cox", "Howard", "Ward", "Torres", "Peterson", "Gray",
]
_MALE = ["John", "William", "James", "George", "Charles", "Frank", "Joseph", "Henry", "Robert",
         "Thomas", "Edward", "Harry", "Walter", "Arthur", "Fred", "Albert", "Samuel", "David"]
_FEMALE = ["Mary", "Anna", "Emma", "Elizabeth", "Margaret", "Minnie", "Ida", "Bertha", "Clara",
           "Alice", "Annie", "Florence", "Bessie", "Grace", "Ethel", "Sarah", "Ella", "Lillian"]


def titanic_like(n_rows: int = 891, seed: int = 0) -> pd.DataFrame:
    """Generate the table; the same seed gives the same rows."""
    rng = np.random.default_rng(seed)
    pclass = rng.choice([1, 2, 3], size=n_rows, p=[0.24, 0.21, 0.55])
    female = rng.random(n_rows) < 0.35
    age = np.clip(rng.normal(30, 14, n_rows), 0.4, 80).round(1)
    child = age < 13
    title = np.where(female, np.where(rng.random(n_rows) < 0.55, "Miss", "Mrs"),
                     np.where(child, "Master", "Mr"))
    first = np.where(female, rng.choice(_FEMALE, n_rows), rng.choice(_MALE, n_rows))
    middle = rng.choice(_MALE + _FEMALE, n_rows)
    surname = rng.choice(_SURNAMES, n_rows)
    names = [f"{s}, {t}. {f} {m} ({i})" if t == "Mrs" else f"{s}, {t}. {f} {m}"
             for i, (s, t, f, m) in enumerate(zip(surname, title, first, middle))]
    seen: dict[str, int] = {}
    for k, name in enumerate(names):  # every name distinct, as passengers' names are
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            names[k] = f"{name} {'I' * seen[name]}"
    prefixes = np.array(["", "", "", "PC ", "A/5 ", "STON/O2. ", "C.A. ", "SOTON/OQ "])
    group = rng.integers(0, int(n_rows * 0.75), n_rows)  # families share a ticket
    ticket = [f"{prefixes[g % len(prefixes)]}{100000 + 37 * g}" for g in group]
    fare = np.round(np.exp(rng.normal(np.array([4.0, 3.0, 2.2])[pclass - 1], 0.5)), 4)
    sibsp = rng.poisson(0.5, n_rows)
    parch = rng.poisson(0.4, n_rows)
    has_cabin = rng.random(n_rows) < np.array([0.8, 0.15, 0.05])[pclass - 1]
    cabin = np.where(has_cabin, [f"{rng.choice(list('ABCDEF'))}{rng.integers(1, 130)}"
                                 for _ in range(n_rows)], None)
    embarked = rng.choice(["S", "C", "Q"], size=n_rows, p=[0.72, 0.19, 0.09]).astype(object)
    embarked[rng.random(n_rows) < 0.003] = None
    age_shown = age.copy()
    age_shown[rng.random(n_rows) < 0.2] = np.nan
    logit = -1.35 + 2.6 * female - 0.95 * (pclass - 2) + 1.3 * child - 0.012 * (age - 30)
    survived = (rng.random(n_rows) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame({
        "PassengerId": np.arange(1, n_rows + 1),
        "Survived": survived,
        "Pclass": pclass,
        "Name": names,
        "Sex": np.where(female, "female", "male"),
        "Age": age_shown,
        "SibSp": sibsp,
        "Parch": parch,
        "Ticket": ticket,
        "Fare": fare,
        "Cabin": cabin,
        "Embarked": embarked,
    })
