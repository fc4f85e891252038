from testproject.api import companies  # the demo's tree

print(companies.query_plan)
