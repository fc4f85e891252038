"""The demo domain: companies with departments, teams, cost centres and employees."""
