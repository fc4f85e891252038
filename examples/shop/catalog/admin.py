from django.contrib import admin

from catalog.models import Product, Review, Shop

admin.site.register(Shop)
admin.site.register(Product)
admin.site.register(Review)
