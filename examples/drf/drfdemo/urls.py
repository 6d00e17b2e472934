from django.contrib.auth import views as auth_views
from django.urls import include, path
from rest_framework.routers import DefaultRouter

from documents import views

router = DefaultRouter()
router.register("documents", views.DocumentViewSet)

urlpatterns = [
    path("", views.document_list, name="home"),
    path("documents/<int:pk>/", views.document_edit, name="edit"),
    path("api/", include(router.urls)),
    path("mqlock/", include("mqlock.django.urls")),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
]
